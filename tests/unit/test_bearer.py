"""Bearer tokens: their shape, the key set, verification, and what is remembered of it."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import jwt
import pytest

from echod.http.bearer import MAX_TOKEN_BYTES, Tokens, bearer_token, peek
from echod.http.keyset import KeySet, Policy
from echod.http.problems import InvalidToken
from tests.support.tokens import (
    SigningKey,
    b64url,
    bearer,
    claims,
    hand_made,
    hs256_with_public_key,
    key_set,
    unsigned,
)

if TYPE_CHECKING:
    from collections.abc import Callable

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    """One key for each accepted algorithm, named by it, and a second ES256 key."""
    made = {alg: SigningKey.generate(alg, kid=alg) for alg in ALGORITHMS}
    made["ES256-b"] = SigningKey.generate("ES256", kid="ES256-b")
    return made


@pytest.fixture(scope="module")
def key_set_of_all(keys: dict[str, SigningKey]) -> KeySet:
    """The key set of every key."""
    return KeySet.parse(key_set(*keys.values()))


@pytest.fixture
def tokens(key_set_of_all: KeySet) -> Tokens:
    """A verifier of the whole set that takes any issuer and audience."""
    return Tokens(key_set_of_all, Policy())


def refusal(tokens: Tokens, token: str) -> str:
    """Why ``tokens`` refuses ``token``."""
    with pytest.raises(InvalidToken) as refused:
        tokens.verify(bearer(token))
    return refused.value.detail


class TestShape:
    def test_bearer_token_takes_the_scheme_in_any_case(self) -> None:
        """RFC 9110 section 11.1: the scheme's name is case-insensitive."""
        assert bearer_token("bEaReR  abc ") == "abc"
        assert bearer_token("Basic abc") is None

    def test_peek_reads_header_and_claims_without_verifying(self) -> None:
        """Any key, or none, will do: nothing is verified."""
        token = hand_made({"alg": "RS256", "kid": "k"}, {"sub": "a", "n": 1.10}, b"sig")
        peeked = peek(token)
        assert peeked.header == {"alg": "RS256", "kid": "k"}
        assert peeked.claims["sub"] == "a"

    @pytest.mark.parametrize(
        ("token", "reason"),
        [
            ("abc", "three base64url parts"),
            ("a.b", "three base64url parts"),
            ("a.b.c.d", "three base64url parts"),
            (".e30.", "three base64url parts"),
            ("e30.e30.a+b", "not base64url"),
            ("e30.e3!.x", "not base64url"),
            ("e30.eyJhIjoxf.x", "not base64url"),
            ("e30." + b64url(b"[]") + ".x", "claims are not a JSON object"),
            ("e30." + b64url(b"{") + ".x", "claims is not JSON"),
            (b64url(b"1") + ".e30.x", "header are not a JSON object"),
            ("e30.e30." + "A" * MAX_TOKEN_BYTES, f"over {MAX_TOKEN_BYTES} bytes"),
            ("e30." + b64url(b'{"a":' + b"[" * 200 + b"]" * 200 + b"}") + ".x", "deeper than"),
            ("e30." + b64url(b'{"a":' + b"[" * 3000 + b"]" * 3000 + b"}") + ".x", "deeper than"),
        ],
        ids=[
            "one-part",
            "two-parts",
            "four-parts",
            "empty-header",
            "plus-sign",
            "bang",
            "length-mod-4-is-1",
            "claims-array",
            "claims-broken-json",
            "header-number",
            "over-8-kib",
            "claims-200-deep",
            "claims-3000-deep",
        ],
    )
    def test_what_is_not_a_jwt_is_refused_with_its_reason(self, token: str, reason: str) -> None:
        """Each malformed token is an invalid_token, and the reason says which rule."""
        with pytest.raises(InvalidToken) as refused:
            peek(token)
        assert reason in refused.value.detail


class TestKeySet:
    @pytest.mark.parametrize(
        ("document", "reason"),
        [
            (b"{", "not JSON"),
            (b"[]", "not a JSON Web Key Set"),
            (b'{"keys": {}}', "not a JSON Web Key Set"),
            (b'{"keys": []}', "no signing keys"),
            (b'{"keys": [1]}', "key 1 is not a JSON object"),
            (b'{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]}', "symmetric (oct)"),
            (b'{"keys": [{"kty": "EC", "crv": "P-521", "kid": "e"}]}', "not an RSA, EC P-256"),
        ],
        ids=["broken", "array", "keys-object", "empty", "not-object", "oct", "p-521"],
    )
    def test_a_document_that_is_not_a_key_set_is_refused(
        self, document: bytes, reason: str
    ) -> None:
        """The reason names what is wrong, for the reload's error line."""
        with pytest.raises(ValueError) as refused:  # noqa: PT011 - the reason is read below
            KeySet.parse(document)
        assert reason in str(refused.value)

    def test_keys_need_their_own_kid(self, keys: dict[str, SigningKey]) -> None:
        """A key without kid cannot be chosen; two keys with one kid cannot be told apart."""
        jwk = keys["ES256"].jwk()
        with pytest.raises(ValueError, match="has no kid"):
            KeySet.parse(json.dumps({"keys": [{**jwk, "kid": ""}]}).encode())
        with pytest.raises(ValueError, match="names two keys"):
            KeySet.parse(json.dumps({"keys": [jwk, jwk]}).encode())

    def test_a_private_key_is_refused(self, keys: dict[str, SigningKey]) -> None:
        """A key set serves public keys; a private one in it is a mistake to stop on."""
        private = jwt.algorithms.ECAlgorithm.to_jwk(keys["ES256"].private, as_dict=True)
        with pytest.raises(ValueError, match="holds a private key"):
            KeySet.parse(json.dumps({"keys": [{**private, "kid": "p"}]}).encode())

    def test_a_key_whose_alg_does_not_fit_it_is_refused(self, keys: dict[str, SigningKey]) -> None:
        """An EC key cannot claim RS256."""
        jwk = {**keys["ES256"].jwk(), "alg": "RS256"}
        with pytest.raises(ValueError, match="does not fit it"):
            KeySet.parse(json.dumps({"keys": [jwk]}).encode())

    def test_encryption_keys_are_left_out(self, keys: dict[str, SigningKey]) -> None:
        """A provider's set may hold keys for encryption: they are not signing keys."""
        document = {"keys": [keys["ES256"].jwk(), {**keys["RS256"].jwk(), "use": "enc"}]}
        assert len(KeySet.parse(json.dumps(document).encode())) == 1


class TestVerification:
    @pytest.mark.parametrize("alg", ALGORITHMS)
    def test_each_accepted_algorithm_verifies(
        self, tokens: Tokens, keys: dict[str, SigningKey], alg: str
    ) -> None:
        """RS, PS, ES256/384 and EdDSA: the token's sub is the user."""
        identity = tokens.verify(bearer(keys[alg].sign(claims(sub=f"user-{alg}"))))
        assert identity.user == f"user-{alg}"

    @pytest.mark.parametrize(
        ("make", "reason"),
        [
            (lambda _: unsigned("ES256"), "not signed (alg none)"),
            (lambda k: hs256_with_public_key(k["RS256"]), "algorithm (alg) is not accepted"),
            (lambda k: k["ES256"].sign(claims(), kid="nope"), "key (kid) is not in the key set"),
            (lambda k: k["ES256"].sign(claims(), kid="ES256-b"), "signature does not verify"),
            (lambda k: k["ES256"].sign(claims(), kid="RS256"), "does not fit its key"),
            (lambda k: k["ES256"].sign(claims()).rsplit(".", 1)[0] + ".", "does not verify"),
            (lambda k: k["ES256"].sign(claims(ttl=-120)), "has expired (exp)"),
            (lambda k: k["ES256"].sign(claims(exp=0)), "has expired (exp)"),
            (lambda k: k["ES256"].sign(claims(nbf=int(time.time()) + 120)), "not valid yet"),
            (lambda k: k["ES256"].sign({"sub": "a"}), "has no exp claim"),
            (lambda k: k["ES256"].sign({"exp": int(time.time()) + 60}), "has no sub claim"),
            (lambda k: k["ES256"].sign(claims(sub="")), "sub claim is empty"),
            (lambda k: k["ES256"].sign(claims(exp="9999999999")), "exp claim is not a number"),
            (lambda _: hand_made({"alg": "ES256"}, claims(), b"x"), "names no key (kid)"),
        ],
        ids=[
            "alg-none",
            "hs256-keyed-with-the-public-key",
            "unknown-kid",
            "swapped-kid",
            "kid-of-another-type",
            "stripped-signature",
            "expired",
            "exp-0",
            "not-yet-valid",
            "no-exp",
            "no-sub",
            "empty-sub",
            "exp-as-text",
            "no-kid",
        ],
    )
    def test_each_refusal_says_why(
        self,
        tokens: Tokens,
        keys: dict[str, SigningKey],
        make: Callable[[dict[str, SigningKey]], str],
        reason: str,
    ) -> None:
        """A refused token is an invalid_token whose description names the rule it broke."""
        detail = refusal(tokens, make(keys))
        assert reason in detail

    def test_exp_of_2_to_the_63_is_a_long_life(
        self, tokens: Tokens, keys: dict[str, SigningKey]
    ) -> None:
        """A huge exp is a valid, if long-lived, token: no overflow anywhere."""
        assert tokens.verify(bearer(keys["ES256"].sign(claims(exp=2**63)))).user == "alice"

    def test_the_leeway_allows_a_little_skew(self, key_set_of_all: KeySet) -> None:
        """Expired or early by less than the leeway still passes; by more, not."""
        key = SigningKey.generate("ES256", kid="ES256")
        lenient = Tokens(KeySet.parse(key_set(key)), Policy(leeway=30))
        now = int(time.time())
        assert lenient.verify(bearer(key.sign(claims(exp=now - 10)))).user == "alice"
        assert lenient.verify(bearer(key.sign(claims(nbf=now + 10)))).user == "alice"
        assert "expired" in refusal(lenient, key.sign(claims(exp=now - 60)))
        del key_set_of_all

    def test_issuer_and_audience_must_be_among_the_policy_s(
        self, key_set_of_all: KeySet, keys: dict[str, SigningKey]
    ) -> None:
        """Any of several issuers passes, and any audience of the token that is listed."""
        strict = Tokens(key_set_of_all, Policy(issuers=("a", "b"), audiences=("api", "web")))
        key = keys["ES256"]
        assert strict.verify(bearer(key.sign(claims(iss="b", aud=["x", "web"])))).user
        assert "issuer (iss)" in refusal(strict, key.sign(claims(iss="c", aud="api")))
        assert "audience (aud)" in refusal(strict, key.sign(claims(iss="a", aud="other")))
        assert "no aud claim" in refusal(strict, key.sign(claims(iss="a")))
        assert "no iss claim" in refusal(strict, key.sign(claims(aud="api")))

    def test_without_an_audience_policy_aud_is_not_checked(
        self, tokens: Tokens, keys: dict[str, SigningKey]
    ) -> None:
        """PyJWT refuses any aud unless told which: echod checks none when none is set."""
        assert tokens.verify(bearer(keys["ES256"].sign(claims(aud="anything")))).user

    def test_no_reason_quotes_the_token(self, tokens: Tokens, keys: dict[str, SigningKey]) -> None:
        """Not the kid, not the issuer, not a byte of the token is in any reason."""
        token = keys["ES256"].sign(claims(iss="secret-issuer"), kid="secret-kid")
        detail = refusal(tokens, token)
        for part in ("secret-kid", "secret-issuer", *token.split(".")):
            assert part not in detail


class TestRemembered:
    def test_a_repeated_token_is_not_verified_again(
        self, tokens: Tokens, keys: dict[str, SigningKey], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The second time, the signature is not checked: the outcome is remembered."""
        calls: list[str] = []
        real = jwt.decode

        def counting(*args: Any, **kwargs: Any) -> Any:
            calls.append("decode")
            return real(*args, **kwargs)

        monkeypatch.setattr(jwt, "decode", counting)
        header = bearer(keys["ES256"].sign(claims()))
        for _ in range(5):
            tokens.verify(header)
        assert calls == ["decode"]

    def test_a_repeated_token_costs_less_than_a_tenth(
        self, key_set_of_all: KeySet, keys: dict[str, SigningKey]
    ) -> None:
        """The best of many remembered lookups against the best of first verifications."""
        tokens = Tokens(key_set_of_all, Policy())
        fresh = [bearer(keys["ES256"].sign(claims(n=n))) for n in range(20)]

        def best(header_for: Callable[[int], str]) -> float:
            times = []
            for n in range(20):
                header = header_for(n)
                started = time.perf_counter()
                tokens.verify(header)
                times.append(time.perf_counter() - started)
            return min(times)

        first = best(lambda n: fresh[n])
        repeated = best(lambda _: fresh[0])
        assert repeated < first / 10, (repeated, first)

    def test_no_entry_outlives_its_token_s_exp(self, keys: dict[str, SigningKey]) -> None:
        """A remembered token is refused as expired once its exp has passed."""
        tokens = Tokens(KeySet.parse(key_set(keys["ES256"])), Policy(leeway=0))
        exp = int(time.time()) + 2
        header = bearer(keys["ES256"].sign(claims(exp=exp)))
        assert tokens.verify(header).expires == exp
        time.sleep(exp + 0.05 - time.time())
        with pytest.raises(InvalidToken, match="expired"):
            tokens.verify(header)

    def test_refusals_are_remembered_but_not_an_early_token_s(
        self, keys: dict[str, SigningKey]
    ) -> None:
        """A token refused as not valid yet passes once its nbf has come."""
        tokens = Tokens(KeySet.parse(key_set(keys["ES256"])), Policy(leeway=0))
        nbf = int(time.time()) + 2
        early = bearer(keys["ES256"].sign(claims(nbf=nbf)))
        with pytest.raises(InvalidToken, match="not valid yet"):
            tokens.verify(early)
        time.sleep(nbf + 0.05 - time.time())
        assert tokens.verify(early).user == "alice"
        assert tokens._refused == {}

    def test_both_tables_are_bounded(
        self, key_set_of_all: KeySet, keys: dict[str, SigningKey]
    ) -> None:
        """Neither table grows past its bound; the oldest entries go first."""
        tokens = Tokens(key_set_of_all, Policy(), max_verified=2, max_refused=2)
        for n in range(5):
            tokens.verify(bearer(keys["ES256"].sign(claims(n=n))))
            with pytest.raises(InvalidToken):
                tokens.verify(bearer(unsigned("ES256", n=n)))
        assert len(tokens._verified) == 2
        assert len(tokens._refused) == 2

    def test_claims_header_is_compact_json_in_base64url(
        self, tokens: Tokens, keys: dict[str, SigningKey]
    ) -> None:
        """X-Auth-Claims decodes to the claims; over 4 KiB, it is left out."""
        small = claims(roles=["a", "b"])
        identity = tokens.verify(bearer(keys["ES256"].sign(small)))
        assert identity.claims is not None
        assert json.loads(_unb64(identity.claims)) == small
        big = tokens.verify(bearer(keys["ES256"].sign(claims(pad="x" * 4000))))
        assert big.claims is None


def _unb64(text: str) -> bytes:
    import base64  # noqa: PLC0415

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
