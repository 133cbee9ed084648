"""Bearer tokens through the app: auth beside Basic, the challenges, the logs, /api/inspect."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.support.tokens import SigningKey, bearer, claims, hand_made, key_set, unsigned
from tests.support.users import ALICE, basic

if TYPE_CHECKING:
    from tests.support.harness import Harness, MakeHarness

BASIC = 'Basic realm="echod", charset="UTF-8"'
BOTH = 'Basic realm="echod", charset="UTF-8", Bearer realm="echod"'


def invalid_token(description: str) -> str:
    """The challenge of a refused token (RFC 6750 section 3)."""
    return f'Bearer realm="echod", error="invalid_token", error_description="{description}"'


@pytest.fixture(scope="module")
def key() -> SigningKey:
    """The ES256 key of the key set in service."""
    return SigningKey.generate("ES256", kid="k1")


@pytest.fixture
def app(make_harness: MakeHarness, key: SigningKey) -> Harness:
    """An app that takes tokens of ``key`` for the audience api."""
    return make_harness(jwks=key_set(key), jwt_audiences=("api",))


class TestBearerAuth:
    def test_a_signed_token_passes_and_its_sub_is_the_user(
        self, app: Harness, key: SigningKey
    ) -> None:
        """The echo answers, and the log line names the sub and the scheme."""
        token = key.sign(claims(sub="carol", aud="api"))
        answer = app.request(body=b'{"a": 1}', headers={"authorization": bearer(token)}).response
        assert (answer.status, answer.body) == (200, b'{"a":1,"echoed":true}\n')
        [line] = app.log_lines()
        assert (line["userId"], line["authScheme"]) == ("carol", "bearer")
        assert token not in json.dumps(line)

    def test_basic_still_passes_beside_tokens(self, app: Harness) -> None:
        """Basic credentials work as before, and say so in the log."""
        assert app.authed(body=b"{}").response.status == 200
        [line] = app.log_lines()
        assert (line["userId"], line["authScheme"]) == ("alice", "basic")

    @pytest.mark.parametrize("headers", [{}, {"authorization": ""}], ids=["none", "empty"])
    def test_no_credentials_get_both_challenges(
        self, app: Harness, headers: dict[str, str]
    ) -> None:
        """Without any credentials, the 401 offers Basic and Bearer, without an error code."""
        answer = app.request(body=b"{}", headers=headers).response
        assert answer.status == 401
        assert answer.header("www-authenticate") == BOTH
        assert "credentials are required" in json.loads(answer.body)["detail"]

    def test_another_scheme_gets_both_challenges(self, app: Harness) -> None:
        """Digest, or anything but Basic and Bearer, is told which two are taken."""
        answer = app.request(body=b"{}", headers={"authorization": "Digest x"}).response
        assert answer.header("www-authenticate") == BOTH

    def test_wrong_basic_credentials_get_the_basic_challenge(self, app: Harness) -> None:
        """A Basic attempt is answered in its own scheme."""
        headers = {"authorization": basic("alice", "nope")}
        assert app.request(body=b"{}", headers=headers).response.header("www-authenticate") == BASIC

    @pytest.mark.parametrize(
        ("token", "description"),
        [
            ("", "the Bearer scheme carries no token"),
            ("abc", "the token is not three base64url parts joined by dots"),
            (unsigned("k1", aud="api"), "the token is not signed (alg none)"),
        ],
        ids=["empty", "not-a-jwt", "alg-none"],
    )
    def test_a_bad_token_gets_the_invalid_token_challenge(
        self, app: Harness, token: str, description: str
    ) -> None:
        """RFC 6750: error="invalid_token" and why, in the header, the problem and the log."""
        answer = app.request(body=b"{}", headers={"authorization": bearer(token)}).response
        assert answer.status == 401
        assert answer.header("www-authenticate") == invalid_token(description)
        assert json.loads(answer.body)["detail"] == description
        [line] = app.log_lines()
        assert (line["detail"], line["userId"], line["authScheme"]) == (description, None, None)

    def test_the_audience_policy_applies(self, app: Harness, key: SigningKey) -> None:
        """A token for another audience is refused."""
        token = key.sign(claims(aud="other"))
        answer = app.request(body=b"{}", headers={"authorization": bearer(token)}).response
        assert answer.header("www-authenticate") == invalid_token(
            "the token is not for this audience (aud)"
        )

    def test_without_a_key_set_a_token_is_not_taken(
        self, make_harness: MakeHarness, key: SigningKey
    ) -> None:
        """JWT off: Bearer is an unsupported scheme, refused with the Basic challenge."""
        app = make_harness()
        token = key.sign(claims())
        answer = app.request(body=b"{}", headers={"authorization": bearer(token)}).response
        assert answer.status == 401
        assert answer.header("www-authenticate") == BASIC


class TestInspectShowsTheToken:
    def test_a_verified_token_shows_header_and_claims_and_never_its_signature(
        self, app: Harness, key: SigningKey
    ) -> None:
        """The report gains token; headers still redact the credentials."""
        token = key.sign(claims(sub="carol", aud="api"))
        answer = app.request("GET", "/api/inspect", headers={"authorization": bearer(token)})
        report = json.loads(answer.response.body)
        assert report["token"]["header"] == {"alg": "ES256", "kid": "k1", "typ": "JWT"}
        assert report["token"]["claims"]["sub"] == "carol"
        assert (report["token"]["verified"], report["token"]["reason"]) == (True, None)
        assert ["authorization", "Bearer <redacted>"] in report["headers"]
        assert token.split(".")[2] not in answer.response.body.decode()

    def test_without_keys_a_token_is_shown_unverified_and_basic_still_applies(
        self, make_harness: MakeHarness, key: SigningKey
    ) -> None:
        """JWT off: the token in Proxy-Authorization is decoded; Basic signs the request in."""
        app = make_harness()
        token = key.sign(claims(sub="carol"))
        headers = {"authorization": ALICE, "proxy-authorization": bearer(token)}
        report = json.loads(app.request("GET", "/api/inspect", headers=headers).response.body)
        assert report["token"]["claims"]["sub"] == "carol"
        assert (report["token"]["verified"], report["token"]["reason"]) == (
            False,
            "no keys configured",
        )
        refused = app.request("GET", "/api/inspect", headers={"authorization": bearer(token)})
        assert refused.response.status == 401

    def test_an_unverified_token_says_why(self, app: Harness, key: SigningKey) -> None:
        """A token that does not verify is shown all the same, with the reason."""
        forged = hand_made({"alg": "ES256", "kid": "k1"}, claims(sub="mallory"), b"sig")
        headers = {"authorization": ALICE, "proxy-authorization": bearer(forged)}
        token = json.loads(app.request("GET", "/api/inspect", headers=headers).response.body)[
            "token"
        ]
        assert token["claims"]["sub"] == "mallory"
        assert token["verified"] is False
        assert token["reason"] == "the token's signature does not verify"
        assert "signature" not in token
        del key

    def test_a_value_that_is_not_a_jwt_adds_no_token(self, make_harness: MakeHarness) -> None:
        """Only what has the shape of a JWT is decoded."""
        app = make_harness()
        headers = {"authorization": ALICE, "proxy-authorization": "Bearer opaque-token"}
        report = json.loads(app.request("GET", "/api/inspect", headers=headers).response.body)
        assert "token" not in report


def test_without_a_key_set_no_jose_library_is_loaded() -> None:
    """The serving app of an echod without --jwt-jwks imports neither PyJWT nor cryptography."""
    code = (
        "import sys\n"
        "from tests.support.harness import Harness\n"
        "import tempfile, pathlib\n"
        "Harness(pathlib.Path(tempfile.mkdtemp()), {'a': b'$2b$04$' + b'x' * 53})\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'jwt', 'cryptography'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
