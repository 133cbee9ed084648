"""CORS against a live echod: listed origins only, preflights, ``*``, and off by default."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import websockets

from echod.http.cors import ALLOW_HEADERS, EXPOSE_HEADERS
from tests.support.processes import Echod
from tests.support.users import AUTH, AUTH_HEADER

APP = "https://app.example"
OTHER = "https://other.example:8443"
CORS_NAMES = {
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-expose-headers",
    "access-control-max-age",
}


def cors_headers(response: httpx.Response) -> dict[str, str]:
    """The CORS headers of an answer, and what CORS adds to Vary.

    An echo also varies with Accept-Encoding, which is not CORS's: it is left out.
    """
    found = {name: value for name, value in response.headers.items() if name in CORS_NAMES}
    vary = [
        item.strip()
        for item in response.headers.get("vary", "").split(",")
        if item.strip() not in {"", "accept-encoding"}
    ]
    if vary:
        found["vary"] = ", ".join(vary)
    return found


def preflight(url: str, origin: str, method: str = "POST") -> httpx.Response:
    """A browser's preflight, without credentials."""
    return httpx.options(
        url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


@pytest.fixture(scope="module")
def listed() -> Any:
    """echod allowing two origins, one by flag and one by the variable."""
    echod = Echod("--cors-origin", APP, env={"ECHOD_CORS_ORIGINS": "ignored.example"})
    echod.args += ["--cors-origin", OTHER.upper().replace("HTTPS", "https")]
    try:
        yield echod.start()
    finally:
        echod.close()


class TestListedOrigins:
    def test_a_preflight_is_204_without_credentials(self, listed: Echod) -> None:
        """The route's methods, the headers a page may send, credentials, max-age, Vary."""
        response = preflight(listed.url + "/api/echo", APP)
        assert response.status_code == 204
        assert cors_headers(response) == {
            "access-control-allow-origin": APP,
            "access-control-allow-credentials": "true",
            "access-control-allow-methods": "POST, PUT, GET",
            "access-control-allow-headers": ALLOW_HEADERS,
            "access-control-max-age": "600",
            "vary": "origin",
        }

    def test_each_route_names_its_methods(self, listed: Echod) -> None:
        """/api/inspect and /api/stream list theirs."""
        inspect = preflight(listed.url + "/api/inspect", APP, "PATCH")
        assert inspect.headers["access-control-allow-methods"] == (
            "GET, HEAD, POST, PUT, PATCH, DELETE"
        )
        stream = preflight(listed.url + "/api/stream", APP, "GET")
        assert stream.headers["access-control-allow-methods"] == "GET, HEAD"

    def test_a_preflight_to_an_unknown_api_path_is_404(self, listed: Echod) -> None:
        """Only routes are preflighted."""
        assert preflight(listed.url + "/api/nope", APP).status_code == 404

    def test_origins_match_without_case(self, listed: Echod) -> None:
        """Browsers send origins in lower case; a listed one in capitals matches too."""
        response = preflight(listed.url + "/api/echo", OTHER)
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == OTHER

    @pytest.mark.parametrize(
        ("path", "auth", "status"),
        [("/api/echo", True, 200), ("/api/echo", False, 401), ("/api/nope", True, 404),
         ("/health", False, 200)],
    )  # fmt: skip
    def test_every_other_answer_carries_the_headers(
        self, listed: Echod, path: str, auth: bool, status: int
    ) -> None:
        """200, 401 and 404 alike, so that the page can read them."""
        response = httpx.request(
            "GET" if path == "/health" else "POST",
            listed.url + path,
            content=b"{}",
            auth=AUTH if auth else None,
            headers={"Origin": APP},
        )
        assert response.status_code == status
        assert cors_headers(response) == {
            "access-control-allow-origin": APP,
            "access-control-allow-credentials": "true",
            "access-control-expose-headers": EXPOSE_HEADERS,
            "vary": "origin",
        }

    def test_a_forced_5xx_carries_them_too(self, listed: Echod) -> None:
        """A 503 asked of /api/inspect is readable by the page."""
        response = httpx.get(
            listed.url + "/api/inspect?status=503", auth=AUTH, headers={"Origin": APP}
        )
        assert response.status_code == 503
        assert response.headers["access-control-allow-origin"] == APP


class TestEverythingElse:
    def test_an_unlisted_origin_gets_nothing(self, listed: Echod) -> None:
        """No CORS header, and its preflight needs credentials like any OPTIONS."""
        answer = httpx.post(
            listed.url + "/api/echo",
            content=b"{}",
            auth=AUTH,
            headers={"Origin": "https://evil.example"},
        )
        assert answer.status_code == 200
        assert cors_headers(answer) == {}
        refused = preflight(listed.url + "/api/echo", "https://evil.example")
        assert refused.status_code == 401
        assert cors_headers(refused) == {}

    def test_the_variable_is_overridden_by_the_flag(self, listed: Echod) -> None:
        """The flags win: the variable's origin is not listed."""
        assert preflight(listed.url + "/api/echo", "https://ignored.example").status_code == 401

    def test_options_without_a_request_method_is_not_a_preflight(self, listed: Echod) -> None:
        """401 without credentials and 405 with them, as with CORS off, and no CORS header."""
        bare = httpx.options(listed.url + "/api/echo", headers={"Origin": APP})
        assert bare.status_code == 401
        assert cors_headers(bare) == {}
        authed = httpx.options(listed.url + "/api/echo", headers={"Origin": APP}, auth=AUTH)
        assert authed.status_code == 405
        assert cors_headers(authed) == {}

    def test_off_by_default(self, echod: Echod) -> None:
        """Without --cors-origin there is no CORS header anywhere."""
        answer = httpx.post(
            echod.url + "/api/echo", content=b"{}", auth=AUTH, headers={"Origin": APP}
        )
        assert cors_headers(answer) == {}
        assert preflight(echod.url + "/api/echo", APP).status_code == 401


class TestAnyOrigin:
    def test_star_answers_every_origin_without_credentials(self, make_echod: Any) -> None:
        """Allow-Origin *, never Allow-Credentials, on preflights and answers."""
        echod = make_echod(env={"ECHOD_CORS_ORIGINS": "*"})
        response = preflight(echod.url + "/api/echo", "https://anyone.example")
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in response.headers
        answer = httpx.post(
            echod.url + "/api/echo",
            content=b"{}",
            auth=AUTH,
            headers={"Origin": "https://x.example"},
        )
        assert answer.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in answer.headers

    def test_star_with_another_origin_is_a_setting_error(self, make_echod: Any) -> None:
        """Exit 2, naming the setting."""
        echod = make_echod("--cors-origin", "*", "--cors-origin", APP, start=False)
        echod.start(wait=False)
        assert echod.wait(timeout=15) == 2
        assert "--cors-origin" in echod.stderr()


class TestWebSocketOrigins:
    @staticmethod
    def opens(url: str, origin: str) -> bool:
        """Whether a WebSocket handshake with ``origin`` is accepted."""

        async def attempt() -> bool:
            try:
                async with websockets.connect(
                    url.replace("http", "ws") + "/api/echo",
                    additional_headers={"Authorization": AUTH_HEADER},
                    origin=origin,  # type: ignore[arg-type]
                ):
                    return True
            except websockets.InvalidStatus:
                return False

        return asyncio.run(attempt())

    def test_a_listed_origin_may_open_one(self, listed: Echod) -> None:
        """A cross-site origin is refused unless listed."""
        assert self.opens(listed.url, APP)
        assert not self.opens(listed.url, "https://evil.example")

    def test_star_lets_any_origin_open_one(self, make_echod: Any) -> None:
        """With * every origin may."""
        echod = make_echod("--cors-origin", "*")
        assert self.opens(echod.url, "https://evil.example")
