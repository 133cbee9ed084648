"""Forward auth: /auth/verify answers a proxy from the credentials alone, and logs what it asked."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

import pytest

from echod.http.forward_auth import header_text, original_request, redact_query
from echod.routes import KNOWN_METHODS
from tests.support.harness import FakeHeaders, FakeScope
from tests.support.tokens import SigningKey, bearer, claims, key_set
from tests.support.users import ALICE

if TYPE_CHECKING:
    from tests.support.harness import Harness, MakeHarness

BOTH = 'Basic realm="echod", charset="UTF-8", Bearer realm="echod"'


@pytest.fixture(scope="module")
def key() -> SigningKey:
    """The key of the key set in service."""
    return SigningKey.generate("ES256", kid="k1")


@pytest.fixture
def app(make_harness: MakeHarness, key: SigningKey) -> Harness:
    """An app that serves /auth/verify and takes tokens of ``key``."""
    return make_harness(jwks=key_set(key), auth_verify=True)


class TestAnswers:
    @pytest.mark.parametrize("method", [*KNOWN_METHODS, "BREW"])
    def test_any_method_with_good_basic_credentials_is_200(self, app: Harness, method: str) -> None:
        """An empty 200 with the user and the scheme, whatever the method."""
        answer = app.request(method, "/auth/verify", headers={"authorization": ALICE}).response
        assert (answer.status, answer.body) == (200, b"")
        assert answer.header("x-auth-user") == "alice"
        assert answer.header("x-auth-scheme") == "basic"
        assert answer.header("x-auth-claims") is None
        assert answer.header("cache-control") == "no-store"

    def test_a_token_is_200_with_its_claims(self, app: Harness, key: SigningKey) -> None:
        """X-Auth-Claims is the token's claims, compact JSON in base64url."""
        token_claims = claims(sub="carol", roles=["admin"])
        headers = {"authorization": bearer(key.sign(token_claims))}
        answer = app.request("GET", "/auth/verify", headers=headers).response
        assert answer.status == 200
        assert (answer.header("x-auth-user"), answer.header("x-auth-scheme")) == (
            "carol",
            "bearer",
        )
        encoded = answer.header("x-auth-claims") or ""
        decoded = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        assert json.loads(decoded) == token_claims
        assert b" " not in decoded

    def test_no_credentials_are_401_with_both_challenges(self, app: Harness) -> None:
        """The proxy passes this 401 and its challenge on to the client."""
        answer = app.request("GET", "/auth/verify").response
        assert answer.status == 401
        assert answer.header("www-authenticate") == BOTH

    def test_a_bad_token_is_401_with_the_invalid_token_challenge(self, app: Harness) -> None:
        """RFC 6750: the reason is in the challenge."""
        answer = app.request("GET", "/auth/verify", headers={"authorization": "Bearer a.b.c"})
        assert answer.response.status == 401
        assert 'error="invalid_token"' in (answer.response.header("www-authenticate") or "")

    def test_without_the_flag_the_route_is_404(self, make_harness: MakeHarness) -> None:
        """--auth-verify is off by default: the path is unknown, after auth as any is."""
        app = make_harness()
        assert app.request("GET", "/auth/verify").response.status == 401
        answer = app.request("GET", "/auth/verify", headers={"authorization": ALICE})
        assert answer.response.status == 404

    def test_envoy_s_paths_under_the_route_are_the_route(self, app: Harness) -> None:
        """ext_authz asks at /auth/verify followed by the original path."""
        answer = app.request(
            "POST", "/auth/verify/api/things/7?x=1", headers={"authorization": ALICE}
        )
        assert answer.response.status == 200
        [line] = app.log_lines()
        assert (line["path"], line["originalMethod"], line["originalUri"]) == (
            "/auth/verify/api/things/7",
            "POST",
            "/api/things/7?x=1",
        )
        assert app.count("200", "POST", "/auth/verify") == 1

    def test_a_user_name_cannot_split_a_header(self, make_harness: MakeHarness) -> None:
        """Outside printable ASCII, the user is percent-encoded."""
        assert header_text("zoë\r\nX-Evil: 1%") == "zo%C3%AB%0D%0AX-Evil: 1%25"
        del make_harness


class TestOriginalRequest:
    @pytest.mark.parametrize(
        ("headers", "expected"),
        [
            (
                {"x-original-method": "DELETE", "x-original-uri": "/a?b=1"},
                ("DELETE", "/a?b=1", None, None),
            ),
            (
                {
                    "x-forwarded-method": "PUT",
                    "x-forwarded-uri": "/c",
                    "x-forwarded-host": "app.example",
                    "x-forwarded-proto": "https",
                },
                ("PUT", "/c", "app.example", "https"),
            ),
            ({}, (None, None, None, None)),
        ],
        ids=["nginx", "traefik-caddy", "none"],
    )
    def test_each_proxy_s_headers_are_read(
        self, headers: dict[str, str], expected: tuple[str | None, ...]
    ) -> None:
        """nginx's X-Original-*, Traefik's and Caddy's X-Forwarded-*."""
        scope = FakeScope("GET", "/auth/verify", FakeHeaders(headers))
        found = original_request(scope, "/auth/verify")  # type: ignore[arg-type]
        assert (found.method, found.uri, found.host, found.proto) == expected

    def test_a_token_in_the_query_is_redacted(self) -> None:
        """RFC 6750 section 2.3's access_token never reaches the log."""
        assert redact_query("/a?x=1&access_token=secret&Access%5Ftoken=s2") == (
            "/a?x=1&access_token=<redacted>&Access%5Ftoken=<redacted>"
        )
        assert redact_query("/a?x=1") == "/a?x=1"

    def test_the_log_line_of_a_denial_has_the_original_request(self, app: Harness) -> None:
        """Denied or allowed, the line says what the proxy asked about."""
        headers = {"x-original-method": "GET", "x-original-uri": "/private?access_token=t0k"}
        app.request("GET", "/auth/verify", headers=headers)
        [line] = app.log_lines()
        assert line["status"] == 401
        assert (line["originalMethod"], line["originalUri"]) == (
            "GET",
            "/private?access_token=<redacted>",
        )
        assert "t0k" not in json.dumps(line)


def test_the_results_are_counted(app: Harness, key: SigningKey) -> None:
    """echod_auth_verify_total{result}: allowed, denied, error; bounded whatever comes."""
    app.request("GET", "/auth/verify", headers={"authorization": ALICE})
    app.request("GET", "/auth/verify", headers={"authorization": bearer(key.sign(claims()))})
    app.request("GET", "/auth/verify")
    app.request("GET", "/auth/verify", headers={"authorization": ALICE}, host=None)

    def result(name: str) -> float | None:
        return app.registry.get_sample_value("echod_auth_verify_total", {"result": name})

    assert (result("allowed"), result("denied"), result("error")) == (2, 1, 1)
