"""Auth: parsing basic credentials, reading htpasswd files, and bounded bcrypt work."""

from __future__ import annotations

import asyncio
import base64
import threading
from typing import TYPE_CHECKING, TypeVar

import bcrypt
import pytest

from echod.http.auth import (
    Authenticator,
    Credentials,
    parse_basic_auth,
)
from echod.http.problems import ServiceUnavailable, Unauthorized
from tests.support.harness import new_record
from tests.support.tokens import SigningKey, key_set

if TYPE_CHECKING:
    from collections.abc import Coroutine


def basic(raw: bytes) -> str:
    """Return an Authorization header carrying ``raw`` as its credentials."""
    return "Basic " + base64.b64encode(raw).decode()


T = TypeVar("T")


def run(coroutine: Coroutine[object, object, T]) -> T:
    """Run one coroutine to completion."""
    return asyncio.run(coroutine)


def pending(auth: Authenticator, header: str) -> Coroutine[object, object, str]:
    """What ``authenticate`` gives for credentials it has not seen: the hash to await.

    Awaited, it gives the user that it wrote into the request's record.
    """
    record = new_record()
    found = auth.authenticate(header, record)
    assert found is not None, f"{header!r} was answered from the cache"

    async def user() -> str:
        await found
        assert record.scheme == "basic"
        assert record.user is not None
        return record.user

    return user()


def known(auth: Authenticator, header: str | None) -> str | None:
    """The user that ``authenticate`` writes at once, with nothing to await (None: none)."""
    record = new_record()
    found = auth.authenticate(header, record)
    if found is not None:
        found.close()
        return None
    return record.user


def verify(auth: Authenticator, raw: bytes) -> str:
    """Authenticate ``user:password``, hashing it if it must be."""
    return known(auth, basic(raw)) or run(pending(auth, basic(raw)))


class TestParseBasicAuth:
    def test_user_and_password_are_split_at_the_first_colon(self) -> None:
        """RFC 7617: the password may contain colons, the user may not."""
        header = basic(b"alice:pass:word")
        assert parse_basic_auth(header) == Credentials("alice", b"pass:word", header)

    @pytest.mark.parametrize(
        "header",
        [
            "basic " + base64.b64encode(b"u:p").decode(),
            "BASIC  " + base64.b64encode(b"u:p").decode(),
        ],
        ids=["lowercase-scheme", "uppercase-extra-space"],
    )
    def test_scheme_is_case_insensitive(self, header: str) -> None:
        """The scheme name is matched case-insensitively (RFC 9110 section 11.1)."""
        assert parse_basic_auth(header) == Credentials("u", b"p", header)

    def test_utf8_user_names_are_decoded(self) -> None:
        """RFC 7617 charset="UTF-8"."""
        assert parse_basic_auth(basic("zoë:pw".encode())).user == "zoë"

    def test_empty_password_is_allowed_by_the_syntax(self) -> None:
        """An empty password parses; the check refuses it later."""
        assert parse_basic_auth(basic(b"u:")).password == b""

    @pytest.mark.parametrize(
        ("header", "detail"),
        [
            (None, "credentials are required"),
            ("", "credentials are required"),
            ("Bearer abc", "only the Basic authentication scheme"),
            ("Basic", "carries no credentials"),
            ("Basic   ", "carries no credentials"),
            ("Basic !!!!", "not valid base64"),
            ("Basic dXNlcjpwYXM", "not valid base64"),
            ("Basic " + base64.b64encode(b"no-colon").decode(), "no colon"),
            ("Basic " + base64.b64encode(b"\xff\xfe:pw").decode(), "not valid UTF-8"),
        ],
        ids=[
            "missing",
            "empty",
            "bearer",
            "no-token",
            "spaces-only",
            "bad-base64",
            "bad-padding",
            "no-colon",
            "user-not-utf8",
        ],
    )
    def test_unusable_headers_are_refused_with_a_challenge(
        self, header: str | None, detail: str
    ) -> None:
        """Each refusal is a 401 that says why and carries the Basic challenge."""
        with pytest.raises(Unauthorized) as caught:
            parse_basic_auth(header)
        assert detail in caught.value.detail
        assert caught.value.headers == (
            ("www-authenticate", 'Basic realm="echod", charset="UTF-8"'),
        )

    @pytest.mark.parametrize(
        ("header", "detail"),
        [
            (None, "credentials are required (HTTP basic auth)"),
            ("Bearer abc", "only the Basic authentication scheme is supported"),
            ("Basic  ", "the Basic scheme carries no credentials"),
            ("Basic !!!!", "the Basic credentials are not valid base64"),
            (basic(b"no-colon"), "the Basic credentials have no colon between user and password"),
            (basic(b"\xff\xfe:pw"), "the user name is not valid UTF-8"),
        ],
        ids=["missing", "bearer", "no-token", "bad-base64", "no-colon", "user-not-utf8"],
    )
    def test_each_refusal_says_exactly_why(self, header: str | None, detail: str) -> None:
        """The 401's detail is the whole sentence that names what is wrong with the header."""
        with pytest.raises(Unauthorized) as caught:
            parse_basic_auth(header)
        assert caught.value.detail == detail

    @pytest.mark.parametrize(
        "header",
        ["Basic \tdTpw", "Basic dTpw\t", "Basic dTpw\r\n"],
        ids=["tab-before", "tab-after", "line-break-after"],
    )
    def test_only_spaces_are_trimmed_around_the_token(self, header: str) -> None:
        """RFC 9110 11.4 sets the token off with spaces; other whitespace is not base64: a 401."""
        with pytest.raises(Unauthorized, match="not valid base64"):
            parse_basic_auth(header)

    @pytest.mark.parametrize(
        ("raw", "user", "password"),
        [
            (b"_svc:pw", "_svc", b"pw"),
            (b"u:W", "u", b"W"),
            (b" :  ", " ", b"  "),
        ],
        ids=["token-starts-with-X", "token-ends-with-X", "spaces-inside"],
    )
    def test_every_character_of_the_token_counts(
        self, raw: bytes, user: str, password: bytes
    ) -> None:
        """Whatever letters base64 spells the credentials with, they come back as sent."""
        header = "Basic " + base64.b64encode(raw).decode()
        assert parse_basic_auth(header) == Credentials(user, password, header)

    def test_password_never_shows_in_repr(self) -> None:
        """Credentials can be logged by accident without leaking the password."""
        credentials = parse_basic_auth(basic(b"alice:secret"))
        assert "secret" not in repr(credentials)
        assert credentials.header not in repr(credentials)


class TestAuthenticator:
    def test_good_credentials_need_bcrypt_once(self, users: dict[str, bytes]) -> None:
        """The first check hashes; later ones are answered from the cache."""
        auth = Authenticator(users)
        header = basic(b"alice:wonderland")
        assert run(pending(auth, header)) == "alice"
        assert known(auth, header) == "alice"

    def test_wrong_password_is_refused_and_remembered(self, users: dict[str, bytes]) -> None:
        """A refused password is refused again without hashing."""
        auth = Authenticator(users)
        header = basic(b"alice:wrong")
        with pytest.raises(Unauthorized, match="wrong user name or password"):
            run(pending(auth, header))
        with pytest.raises(Unauthorized, match="wrong user name or password"):
            known(auth, header)

    def test_unknown_user_is_refused(self, users: dict[str, bytes]) -> None:
        """An unknown user is hashed like a known one, then refused."""
        auth = Authenticator(users)
        with pytest.raises(Unauthorized):
            run(pending(auth, basic(b"mallory:wonderland")))

    def test_a_cached_user_with_another_password_is_checked_again(
        self, users: dict[str, bytes]
    ) -> None:
        """The cache holds a digest of the good password, not a pass for the user."""
        auth = Authenticator(users)
        verify(auth, b"alice:wonderland")
        with pytest.raises(Unauthorized):
            run(pending(auth, basic(b"alice:wonderland2")))
        assert known(auth, basic(b"alice:wonderland")) == "alice"

    def test_long_passwords_follow_bcrypt_72_byte_rule(self) -> None:
        """bcrypt reads 72 bytes: a longer password is checked on those, not crashed on."""
        password = b"p" * 100
        auth = Authenticator({"long": bcrypt.hashpw(password[:72], bcrypt.gensalt(4))})
        assert verify(auth, b"long:" + password) == "long"

    def test_nul_in_password_is_a_refusal_not_a_crash(self, users: dict[str, bytes]) -> None:
        """bcrypt cannot hash some passwords; they are simply wrong."""
        auth = Authenticator(users)
        with pytest.raises(Unauthorized):
            verify(auth, b"alice:wonder\0land")

    def test_malformed_credentials_are_refused_before_any_hash(
        self, users: dict[str, bytes]
    ) -> None:
        """A header that is not Basic credentials is a 401 at once, with nothing to await."""
        auth = Authenticator(users)
        with pytest.raises(Unauthorized, match="credentials are required"):
            known(auth, None)
        with pytest.raises(Unauthorized, match="only the Basic"):
            known(auth, "Bearer abc")

    def test_the_same_new_credentials_are_hashed_once(self, users: dict[str, bytes]) -> None:
        """Requests that carry the same new credentials at once share one bcrypt run."""
        calls: list[bytes] = []
        real = bcrypt.checkpw

        def counting(password: bytes, hashed: bytes) -> bool:
            calls.append(password)
            return real(password, hashed)

        async def burst() -> list[str]:
            auth = Authenticator(users, max_pending=1)
            same = [pending(auth, basic(b"alice:wonderland")) for _ in range(50)]
            return await asyncio.gather(*same)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(bcrypt, "checkpw", counting)
            assert run(burst()) == ["alice"] * 50
        assert calls == [b"wonderland"]

    def test_verified_table_is_bounded(self, users: dict[str, bytes]) -> None:
        """Remembered good credentials never exceed the bound; the oldest go first."""
        auth = Authenticator(users, max_verified=2)
        headers = ["Basic  " + basic(b"alice:wonderland").split()[1] + " " * n for n in range(3)]
        for header in headers:
            run(pending(auth, header))
        run(pending(auth, headers[0]))  # forgotten: hashed again
        assert known(auth, headers[2]) == "alice"

    def test_refused_table_is_bounded(self, users: dict[str, bytes]) -> None:
        """Remembered refusals never exceed the bound; the oldest go first."""
        auth = Authenticator(users, max_refused=3)
        for n in range(5):
            with pytest.raises(Unauthorized):
                verify(auth, f"alice:wrong{n}".encode())
        with pytest.raises(Unauthorized):
            run(pending(auth, basic(b"alice:wrong0")))  # forgotten: hashed again
        with pytest.raises(Unauthorized):
            known(auth, basic(b"alice:wrong4"))

    def test_hashing_queue_is_bounded(self, users: dict[str, bytes]) -> None:
        """Past max_pending waiting credentials, more are answered 503 at once."""
        gate = threading.Event()
        hashed = users["alice"]

        def slow_checkpw(password: bytes, hashed_password: bytes) -> bool:
            gate.wait(5)
            return password == b"wonderland" and hashed_password == hashed

        async def flood() -> list[object]:
            auth = Authenticator(users, max_pending=4)
            tasks = [
                asyncio.ensure_future(pending(auth, basic(f"alice:w{n}".encode())))
                for n in range(10)
            ]
            await asyncio.sleep(0.05)
            gate.set()
            return await asyncio.gather(*tasks, return_exceptions=True)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(bcrypt, "checkpw", slow_checkpw)
            outcomes = run(flood())
        busy = [o for o in outcomes if isinstance(o, ServiceUnavailable)]
        refused = [o for o in outcomes if isinstance(o, Unauthorized)]
        assert (len(busy), len(refused)) == (6, 4)
        assert busy[0].headers == (("retry-after", "1"),)

    def test_known_users_pass_while_the_queue_is_full(self, users: dict[str, bytes]) -> None:
        """A flood of new passwords does not touch users already verified."""
        auth = Authenticator(users, max_pending=0)
        auth._verified[basic(b"bob:builder")] = "bob"  # verified before the flood
        with pytest.raises(ServiceUnavailable):
            verify(auth, b"alice:x")
        assert known(auth, basic(b"bob:builder")) == "bob"


class _Verified:
    user = "token-user"


class _Tokens:
    """A stand-in for echod.http.bearer.Tokens: every bearer token is good."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.key_sets: list[object] = []

    def verify(self, header: str) -> _Verified:
        self.seen.append(header)
        return _Verified()

    def use(self, key_set: object) -> None:
        self.key_sets.append(key_set)


class TestAuthenticatorDecisions:
    """Each decision of the Authenticator, on its boundary: what is taken, what is not."""

    def test_bearer_is_the_whole_scheme_word_in_any_case(self, users: dict[str, bytes]) -> None:
        """``Bearer x`` and ``BEARER x`` are tokens; ``Bearerx`` is another scheme."""
        tokens = _Tokens()
        auth = Authenticator(users, tokens=tokens)  # type: ignore[arg-type]
        record = new_record()
        assert auth.authenticate("BEARER abc", record) is None
        assert (record.user, record.scheme) == ("token-user", "bearer")
        assert tokens.seen == ["BEARER abc"]
        with pytest.raises(Unauthorized) as refused:
            auth.authenticate("Bearerabc", new_record())
        assert refused.value.detail == (
            "only the Basic and Bearer authentication schemes are supported"
        )
        assert tokens.seen == ["BEARER abc"]

    def test_with_tokens_basic_keeps_its_own_parsing(self, users: dict[str, bytes]) -> None:
        """Basic with two spaces before the credentials is still Basic, beside tokens."""
        auth = Authenticator(users, tokens=_Tokens())  # type: ignore[arg-type]
        header = "Basic  " + basic(b"alice:wonderland").split()[1]
        assert run(pending(auth, header)) == "alice"

    def test_with_tokens_no_credentials_say_both_schemes(self, users: dict[str, bytes]) -> None:
        """The refusal names both schemes, in its detail and in its challenge."""
        auth = Authenticator(users, tokens=_Tokens())  # type: ignore[arg-type]
        with pytest.raises(Unauthorized) as refused:
            auth.authenticate(None, new_record())
        assert refused.value.detail == (
            "credentials are required (HTTP basic auth or a bearer token)"
        )
        assert Unauthorized.BOTH in refused.value.headers

    def test_a_hash_bcrypt_cannot_read_refuses_the_user(self) -> None:
        """A damaged hash is a refusal, never a pass and never a crash."""
        auth = Authenticator({"alice": b"not a bcrypt hash"})
        with pytest.raises(Unauthorized, match="wrong user name or password"):
            verify(auth, b"alice:wonderland")

    def test_the_busy_answer_says_why(self, users: dict[str, bytes]) -> None:
        """Past the queue's bound, the 503's detail says what to do."""
        auth = Authenticator(users, max_pending=0)
        with pytest.raises(ServiceUnavailable) as busy:
            verify(auth, b"alice:x")
        assert busy.value.detail == "too many new credentials are being checked; retry shortly"

    def test_refusals_have_their_own_bound(self, users: dict[str, bytes]) -> None:
        """max_refused bounds refusals, whatever max_verified is."""
        auth = Authenticator(users, max_verified=1, max_refused=3)
        for n in range(3):
            with pytest.raises(Unauthorized):
                verify(auth, f"alice:wrong{n}".encode())
        for n in range(3):  # all three remembered: refused at once, nothing to await
            with pytest.raises(Unauthorized):
                known(auth, basic(f"alice:wrong{n}".encode()))

    def test_bcrypt_runs_on_one_thread_of_its_own(self, users: dict[str, bytes]) -> None:
        """Several new credentials at once are hashed one after another, on echod-bcrypt."""
        threads: set[tuple[str, int]] = set()
        real = bcrypt.checkpw

        def watched(password: bytes, hashed: bytes) -> bool:
            threads.add((threading.current_thread().name, threading.get_ident()))
            return real(password, hashed)

        async def burst() -> list[object]:
            auth = Authenticator(users)
            new = [pending(auth, basic(f"alice:w{n}".encode())) for n in range(8)]
            return await asyncio.gather(*new, return_exceptions=True)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(bcrypt, "checkpw", watched)
            assert all(isinstance(outcome, Unauthorized) for outcome in run(burst()))
        [(name, _)] = threads
        assert name.startswith("echod-bcrypt")

    def test_close_does_not_wait_for_a_hash_under_way(self, users: dict[str, bytes]) -> None:
        """close() returns at once; the hash in hand finishes on its own."""
        gate = threading.Event()
        closed = threading.Event()

        def stuck(_password: bytes, _hashed: bytes) -> bool:
            gate.wait(10)
            return False

        async def scenario() -> None:
            auth = Authenticator(users)
            hashing = asyncio.ensure_future(pending(auth, basic(b"alice:x")))
            await asyncio.sleep(0.05)

            def close() -> None:
                auth.close()
                closed.set()

            closer = threading.Thread(target=close)
            closer.start()
            await asyncio.to_thread(closed.wait, 5)
            assert closed.is_set(), "close() waited for the hash"
            gate.set()
            with pytest.raises(Unauthorized):
                await hashing

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(bcrypt, "checkpw", stuck)
            run(scenario())


def _hashed_again(auth: Authenticator, header: str) -> bool:
    """Whether ``header`` would be hashed again (not remembered either way)."""
    found = auth.authenticate(header, new_record())
    if found is None:
        return False
    found.close()
    return True


class TestNewUsers:
    """use(): the users of a reload, put in service in place."""

    def test_a_removed_user_is_refused_at_once(self, users: dict[str, bytes]) -> None:
        """Nothing remembered survives: bob, verified before, is hashed again and refused."""
        auth = Authenticator(users)
        assert verify(auth, b"bob:builder") == "bob"
        auth.use({"alice": users["alice"]})
        with pytest.raises(Unauthorized):
            run(pending(auth, basic(b"bob:builder")))
        assert verify(auth, b"alice:wonderland") == "alice"

    def test_a_refusal_is_forgotten_when_the_password_changes(
        self, users: dict[str, bytes]
    ) -> None:
        """A password refused under the old users is hashed again under the new ones."""
        auth = Authenticator(users)
        with pytest.raises(Unauthorized):
            verify(auth, b"alice:rabbit")
        auth.use({**users, "alice": bcrypt.hashpw(b"rabbit", bcrypt.gensalt(4))})
        assert run(pending(auth, basic(b"alice:rabbit"))) == "alice"

    def test_a_hash_under_way_as_users_change_is_not_remembered(
        self, users: dict[str, bytes]
    ) -> None:
        """Its outcome answers the requests that waited, and is then forgotten."""
        gate = threading.Event()
        real = bcrypt.checkpw

        def held(password: bytes, hashed: bytes) -> bool:
            gate.wait(10)
            return real(password, hashed)

        async def scenario() -> str:
            auth = Authenticator(users)
            auth.use(users)  # a reload before the hash starts: its generation is not the first
            hashing = asyncio.ensure_future(pending(auth, basic(b"bob:builder")))
            await asyncio.sleep(0.05)
            auth.use(users)  # the same users again, a new generation
            gate.set()
            user = await hashing
            assert _hashed_again(auth, basic(b"bob:builder"))
            return user

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(bcrypt, "checkpw", held)
            assert run(scenario()) == "bob"

    def test_a_new_key_set_goes_to_the_tokens(self, users: dict[str, bytes]) -> None:
        """use_key_set() parses the key set and hands it over; without tokens it is a no-op."""
        tokens = _Tokens()
        jwks = key_set(SigningKey.generate())
        Authenticator(users, tokens=tokens).use_key_set(jwks)  # type: ignore[arg-type]
        assert [type(parsed).__name__ for parsed in tokens.key_sets] == ["KeySet"]
        Authenticator(users).use_key_set(jwks)  # no --jwt-jwks: nothing to change, no error

    def test_a_failed_hash_is_not_remembered_and_breaks_nothing(
        self, users: dict[str, bytes]
    ) -> None:
        """A hash that raises answers its request with the error, and is not kept."""
        errors: list[object] = []

        def broken(_password: bytes, _hashed: bytes) -> bool:
            raise RuntimeError("bcrypt failed")

        async def scenario() -> None:
            asyncio.get_running_loop().set_exception_handler(
                lambda _, context: errors.append(context)
            )
            auth = Authenticator(users)
            with pytest.raises(RuntimeError, match="bcrypt failed"):
                await pending(auth, basic(b"bob:builder"))
            assert not auth._hashing
            assert _hashed_again(auth, basic(b"bob:builder"))

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(bcrypt, "checkpw", broken)
            run(scenario())
        assert errors == []
