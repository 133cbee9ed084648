"""Forward auth with the configurations of deploy/proxies/forward-auth: nginx and Caddy for real.

Each proxy runs as a local process (the Debian package) on a free loopback port, from a
temporary copy of the shipped configuration whose addresses are the test's: a real
echod with ``--auth-verify`` and a key set, and an upstream app that answers with the
headers it got. Both paths are checked: good Basic or Bearer credentials reach the app
with ``X-Auth-User``; none, or a bad token, get echod's 401 and its challenge. Traefik and
Envoy have no binary here: their files are read as data and checked for what they name.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from echod.http.forward_auth import ANSWER_HEADERS
from echod.routes import AUTH_VERIFY
from scripts.stack import stop
from tests.deploy.support import DEPLOY, load_yaml
from tests.support.processes import Echod, free_port
from tests.support.tokens import SigningKey, bearer, claims, key_set, unsigned
from tests.support.tools import require_tool
from tests.support.users import AUTH, AUTH_HEADER, USER
from tests.support.waiting import eventually

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

FORWARD_AUTH = DEPLOY / "proxies" / "forward-auth"
#: The addresses the shipped configurations use, and what the tests put in their place.
SHIPPED_ECHOD, SHIPPED_APP, SHIPPED_PORT = "127.0.0.1:3000", "127.0.0.1:8081", "8080"
BOTH = 'Basic realm="echod", charset="UTF-8", Bearer realm="echod"'
KEY = SigningKey.generate("ES256", kid="proxy-test")


class _App(BaseHTTPRequestHandler):
    """The protected app: any method gets 200 and the request's headers as JSON."""

    def _answer(self) -> None:
        body = json.dumps({name.lower(): value for name, value in self.headers.items()})
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 - http.server's names

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Stay quiet."""


@pytest.fixture(scope="module")
def app_port() -> Iterator[int]:
    """The upstream app, on a free loopback port."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _App)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def echod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Echod]:
    """echod with /auth/verify and the key set of KEY."""
    jwks = tmp_path_factory.mktemp("keys") / "jwks.json"
    jwks.write_bytes(key_set(KEY))
    server = Echod("--auth-verify", "--jwt-jwks", str(jwks))
    try:
        yield server.start()
    finally:
        server.close()


def configured(shipped: Path, echod: Echod, app_port: int, port: int) -> str:
    """The shipped configuration with the test's addresses in place of its own."""
    text = shipped.read_text()
    for old, new in (
        (SHIPPED_ECHOD, f"127.0.0.1:{echod.port}"),
        (SHIPPED_APP, f"127.0.0.1:{app_port}"),
        (f"listen {SHIPPED_PORT};", f"listen 127.0.0.1:{port};"),
        (f":{SHIPPED_PORT} {{", f"http://127.0.0.1:{port} {{"),
    ):
        text = text.replace(old, new)
    assert SHIPPED_ECHOD not in text
    assert SHIPPED_APP not in text
    return text


def start_nginx(directory: Path, config: str) -> subprocess.Popen[bytes]:
    """nginx in the foreground, all its files in ``directory``."""
    nginx = require_tool("nginx", "Debian package nginx")
    (directory / "logs").mkdir()
    (directory / "nginx.conf").write_text(config)
    command = [nginx, "-p", str(directory), "-c", str(directory / "nginx.conf"), "-e", "stderr"]
    return subprocess.Popen(
        [*command, "-g", f"daemon off; pid {directory / 'nginx.pid'};"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def start_caddy(directory: Path, config: str) -> subprocess.Popen[bytes]:
    """Caddy in the foreground, its data and config folders in ``directory``."""
    caddy = require_tool("caddy", "Debian package caddy")
    (directory / "Caddyfile").write_text(config)
    env = {
        **os.environ,
        "HOME": str(directory),
        "XDG_CONFIG_HOME": str(directory / "config"),
        "XDG_DATA_HOME": str(directory / "data"),
    }
    return subprocess.Popen(
        [caddy, "run", "--config", str(directory / "Caddyfile"), "--adapter", "caddyfile"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )


PROXIES = {"nginx": ("nginx.conf", start_nginx), "caddy": ("Caddyfile", start_caddy)}


@pytest.fixture(scope="module", params=list(PROXIES))
def proxy(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    echod: Echod,
    app_port: int,
) -> Iterator[str]:
    """The base URL of nginx or Caddy in front of the app, asking echod; stopped after."""
    shipped, start = PROXIES[request.param]
    port = free_port()
    directory = tmp_path_factory.mktemp(request.param)
    process = start(directory, configured(FORWARD_AUTH / shipped, echod, app_port, port))
    url = f"http://127.0.0.1:{port}"

    def answering() -> bool:
        if process.poll() is not None:
            pytest.fail(f"{request.param} exited with {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(url + "/", timeout=1).status_code > 0
        return False

    try:
        eventually(answering, timeout=20, failure=lambda: f"{request.param} did not answer")
        yield url
    finally:
        stop(process)


def test_good_basic_credentials_reach_the_app_with_the_user(proxy: str) -> None:
    """The app gets the request, with X-Auth-User and X-Auth-Scheme from echod."""
    answer = httpx.get(proxy + "/private?x=1", auth=AUTH, timeout=10)
    assert answer.status_code == 200
    seen = answer.json()
    assert (seen["x-auth-user"], seen["x-auth-scheme"]) == (USER, "basic")
    assert "x-auth-claims" not in seen


def test_a_good_token_reaches_the_app_with_its_sub_and_claims(proxy: str) -> None:
    """X-Auth-User is the token's sub, and X-Auth-Claims its claims."""
    token_claims = claims(sub="carol", roles=["reader"])
    headers = {"authorization": bearer(KEY.sign(token_claims))}
    answer = httpx.post(proxy + "/private", headers=headers, content=b"payload", timeout=10)
    assert answer.status_code == 200
    seen = answer.json()
    assert (seen["x-auth-user"], seen["x-auth-scheme"]) == ("carol", "bearer")
    encoded = seen["x-auth-claims"]
    assert json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))) == (
        token_claims
    )


def test_no_credentials_get_the_401_and_both_challenges(proxy: str) -> None:
    """echod's 401, with its challenges, is the client's answer; the app sees nothing."""
    answer = httpx.get(proxy + "/private", timeout=10)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == BOTH


def test_a_bad_token_gets_the_invalid_token_challenge(proxy: str) -> None:
    """RFC 6750's challenge, with why, comes through the proxy."""
    headers = {"authorization": bearer(unsigned("proxy-test"))}
    answer = httpx.get(proxy + "/private", headers=headers, timeout=10)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == (
        'Bearer realm="echod", error="invalid_token", '
        'error_description="the token is not signed (alg none)"'
    )


def test_a_client_cannot_send_the_auth_headers_itself(proxy: str) -> None:
    """X-Auth-* come from echod alone: a client's own never reach the app."""
    headers = {
        "authorization": AUTH_HEADER,
        "x-auth-user": "admin",
        "x-auth-claims": "eyJhZG1pbiI6dHJ1ZX0",
    }
    seen = httpx.get(proxy + "/private", headers=headers, timeout=10).json()
    assert seen["x-auth-user"] == USER
    assert "x-auth-claims" not in seen


def test_echod_logs_the_original_request(proxy: str, echod: Echod) -> None:
    """Its line of the check names the method and URI the client asked the proxy for."""
    httpx.delete(proxy + "/things/7?mark=original-" + proxy[-5:], auth=AUTH, timeout=10)
    mark = "/things/7?mark=original-" + proxy[-5:]

    def logged() -> list[dict[str, Any]]:
        return [line for line in echod.log_lines() if line.get("originalUri") == mark]

    [line] = eventually(logged, timeout=5, failure=lambda: "no line of the check")
    assert (line["path"], line["status"], line["originalMethod"]) == (
        "/auth/verify",
        200,
        "DELETE",
    )


class TestTraefik:
    """Traefik's files, read as data (no Traefik runs here): each name they use is defined."""

    STATIC = load_yaml(FORWARD_AUTH / "traefik.yaml")
    DYNAMIC = load_yaml(FORWARD_AUTH / "traefik-dynamic.yaml")
    #: The options of Traefik's ForwardAuth middleware (v2 and v3): a typo is an error.
    FORWARD_AUTH_OPTIONS = frozenset(
        {
            "address", "tls", "trustForwardHeader", "authResponseHeaders",
            "authResponseHeadersRegex", "authRequestHeaders", "addAuthCookiesToResponse",
            "headerField", "forwardBody", "maxBodySize", "preserveLocationHeader",
            "preserveRequestMethod",
        }
    )  # fmt: skip

    def test_the_static_file_names_the_dynamic_one_and_the_entry_point(self) -> None:
        """The file provider reads the file beside it; clients come in on 8080."""
        assert self.STATIC["entryPoints"]["web"]["address"] == f":{SHIPPED_PORT}"
        assert (FORWARD_AUTH / self.STATIC["providers"]["file"]["filename"]).is_file()

    def test_every_router_s_names_are_defined(self) -> None:
        """Entry points, middlewares and services that routers name all exist."""
        http = self.DYNAMIC["http"]
        for router in http["routers"].values():
            assert set(router["entryPoints"]) <= set(self.STATIC["entryPoints"])
            assert set(router["middlewares"]) <= set(http["middlewares"])
            assert router["service"] in http["services"]
            assert router["rule"] == "PathPrefix(`/`)"

    def test_forward_auth_asks_echod_and_copies_its_answer(self) -> None:
        """The middleware asks /auth/verify and copies exactly echod's X-Auth-* headers."""
        [middleware] = self.DYNAMIC["http"]["middlewares"].values()
        options = middleware["forwardAuth"]
        assert set(options) <= self.FORWARD_AUTH_OPTIONS
        assert options["address"] == f"http://{SHIPPED_ECHOD}{AUTH_VERIFY.path}"
        assert options["authResponseHeaders"] == list(ANSWER_HEADERS)
        assert options["trustForwardHeader"] is False
        [server] = self.DYNAMIC["http"]["services"]["app"]["loadBalancer"]["servers"]
        assert server["url"] == f"http://{SHIPPED_APP}"


class TestEnvoy:
    """Envoy's file, read as data (no Envoy runs here): ext_authz in HTTP mode asks echod."""

    CONFIG = load_yaml(FORWARD_AUTH / "envoy.yaml")
    #: The typed configs the file may use, each a v3 API type.
    TYPES = frozenset(
        {
            (
                "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
                "HttpConnectionManager"
            ),
            "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
            "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
            "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
        }
    )

    def filters(self) -> list[dict[str, Any]]:
        """The HTTP filters of the one listener, in order."""
        [listener] = self.CONFIG["static_resources"]["listeners"]
        [chain] = listener["filter_chains"]
        [manager] = chain["filters"]
        assert manager["typed_config"]["@type"] in self.TYPES
        filters: list[dict[str, Any]] = manager["typed_config"]["http_filters"]
        return filters

    def clusters(self) -> dict[str, str]:
        """Each cluster's name and the address of its one endpoint."""
        found = {}
        for cluster in self.CONFIG["static_resources"]["clusters"]:
            [group] = cluster["load_assignment"]["endpoints"]
            [endpoint] = group["lb_endpoints"]
            address = endpoint["endpoint"]["address"]["socket_address"]
            found[cluster["name"]] = f"{address['address']}:{address['port_value']}"
        return found

    def test_the_filters_are_known_types_and_the_router_is_last(self) -> None:
        """Every typed config is a v3 type the file means; the router ends the chain."""
        names = [each["name"] for each in self.filters()]
        assert names == [
            "envoy.filters.http.header_mutation",
            "envoy.filters.http.ext_authz",
            "envoy.filters.http.router",
        ]
        assert {each["typed_config"]["@type"] for each in self.filters()} <= self.TYPES

    def test_ext_authz_asks_echod_and_fails_closed(self) -> None:
        """At /auth/verify followed by the path, on the echod cluster; down means refused."""
        config = self.filters()[1]["typed_config"]
        assert config["failure_mode_allow"] is False
        service = config["http_service"]
        assert service["path_prefix"] == AUTH_VERIFY.path
        assert AUTH_VERIFY.subtree, "Envoy appends the original path to the prefix"
        assert self.clusters()[service["server_uri"]["cluster"]] == SHIPPED_ECHOD

    def test_the_answer_s_headers_go_up_and_its_challenge_goes_back(self) -> None:
        """echod's X-Auth-* reach the app; its WWW-Authenticate reaches the client."""
        response = self.filters()[1]["typed_config"]["http_service"]["authorization_response"]
        upstream = [each["exact"] for each in response["allowed_upstream_headers"]["patterns"]]
        assert upstream == [name.lower() for name in ANSWER_HEADERS]
        client = [each["exact"] for each in response["allowed_client_headers"]["patterns"]]
        assert client == ["www-authenticate"]

    def test_a_client_s_own_auth_headers_are_removed_first(self) -> None:
        """The header mutation before ext_authz removes what only echod may set."""
        mutations = self.filters()[0]["typed_config"]["mutations"]["request_mutations"]
        assert [each["remove"] for each in mutations] == [name.lower() for name in ANSWER_HEADERS]

    def test_the_routes_lead_to_the_app(self) -> None:
        """Every path goes to the app cluster, at the app's address."""
        [listener] = self.CONFIG["static_resources"]["listeners"]
        manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
        [host] = manager["route_config"]["virtual_hosts"]
        assert host["routes"] == [{"match": {"prefix": "/"}, "route": {"cluster": "app"}}]
        assert self.clusters()["app"] == SHIPPED_APP
        assert listener["address"]["socket_address"]["port_value"] == int(SHIPPED_PORT)
