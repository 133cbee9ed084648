"""The defects that real proxies showed in echod, each through the proxy that showed it.

Each test fails on the echod from before its fix: a 413 lost behind HAProxy and Caddy, a
delay the proxy gave up on logged as 200, an event stream that nginx buffered, the
HTTP/2 authority missing from the report, a forged Forwarded header hiding what the
proxy said, a bare 405 for a handshake that lost its Upgrade, a WebSocket refused
behind nginx's ``Host $host``, and a stream cut short that looked complete.
"""

from __future__ import annotations

import json
import signal
import socket
import ssl
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from websockets.sync.client import connect
from websockets.typing import Origin

from tests.proxies.support import DEFAULT, KINDS, PACKAGES, Certificate, Origins, Proxy
from tests.support.tools import require_tool
from tests.support.users import AUTH, AUTH_HEADER
from tests.support.waiting import eventually

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = pytest.mark.proxies

#: nginx in front of one echod as many first write it, with the settings a test adds.
NGINX = """\
upstream echod {{
    server 127.0.0.1:3000;
    server 127.0.0.1:3001;
}}
server {{
    listen 443 ssl;
    server_name echod.example;
    ssl_certificate /etc/ssl/certs/echod.example.pem;
    ssl_certificate_key /etc/ssl/private/echod.example.key;
    location / {{
        proxy_pass http://echod;
{settings}
    }}
}}
"""
#: What nginx needs to pass a WebSocket on.
UPGRADE = """\
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";"""


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """The proxies' certificate for localhost."""
    return Certificate.make(tmp_path_factory.mktemp("certificate"))


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Origins]:
    """One echod behind the proxies of this module (--drain-delay 3, --max-delay 20)."""
    for kind in KINDS:
        require_tool(kind, f"Debian package {PACKAGES[kind]}")
    made = Origins(tmp_path_factory.mktemp("origin"), count=1)
    try:
        yield made.start()
    finally:
        made.close()


@pytest.fixture
def make_proxy(certificate: Certificate, tmp_path: Path) -> Iterator[Callable[..., Proxy]]:
    """Start a proxy of a kind, with a configuration (a file, or text), in front of ports."""
    started: list[Proxy] = []

    def make(kind: str, config: Path | str, ports: list[int]) -> Proxy:
        directory = tmp_path / f"{kind}-{len(started)}"
        directory.mkdir()
        if isinstance(config, str):
            written = directory / ("Caddyfile" if kind == "caddy" else f"{kind}.conf")
            written.write_text(config)
            config = written
        proxy = Proxy(kind, config, ports, directory, certificate)
        started.append(proxy)
        return proxy.start()

    yield make
    for proxy in started:
        proxy.stop()


def client(proxy: Proxy, **kwargs: Any) -> httpx.Client:
    """A client of the proxy, authenticated, not verifying the test's certificate."""
    return httpx.Client(base_url=proxy.url, auth=AUTH, verify=False, timeout=20, **kwargs)  # noqa: S501


def logged(origins: Origins, rid: str) -> dict[str, Any]:
    """The log line of request ``rid``, once echod has written it."""

    def find() -> dict[str, Any]:
        for echod in origins.echods:
            for line in echod.log_lines():
                if line.get("requestId") == rid and "status" in line:
                    return line
        return {}

    found: dict[str, Any] = eventually(find, timeout=10, failure=f"no log line of {rid}")
    return found


@pytest.mark.parametrize("kind", ["haproxy", "caddy"])
def test_every_413_and_401_reaches_the_client(
    make_proxy: Callable[..., Proxy], origin: Origins, kind: str
) -> None:
    """Defect 1: a body over the limit gets its 413 through the proxy, every time.

    echod answered before reading the body and closed: the kernel reset the connection,
    and the proxy's client saw a disconnect (HAProxy) or a 502 (Caddy) in up to 17 of 20
    tries. echod now reads and drops the rest first. The same holds for a 401.
    """
    proxy = make_proxy(kind, DEFAULT[kind], origin.ports)
    body = b"x" * (2 * 1024 * 1024)
    statuses: list[int | str] = []
    for attempt in range(30):
        credentials = None if attempt % 3 == 2 else AUTH  # every third without: a 401
        with httpx.Client(base_url=proxy.url, auth=credentials, verify=False) as http:  # noqa: S501
            try:
                statuses.append(http.post("/api/echo", content=body).status_code)
            except httpx.HTTPError as error:
                statuses.append(type(error).__name__)
    assert statuses == [401 if attempt % 3 == 2 else 413 for attempt in range(30)]


def test_a_delay_the_proxy_gave_up_on_is_logged_499(
    make_proxy: Callable[..., Proxy], origin: Origins
) -> None:
    """Defect 2: the proxy's 504 ends the delay, and echod logs 499, not 200 after the delay."""
    proxy = make_proxy(
        "nginx", NGINX.format(settings="        proxy_read_timeout 1s;"), origin.ports
    )
    with client(proxy) as http:
        response = http.get("/api/inspect?delay_ms=5000", headers={"X-Request-ID": "given-up"})
    assert response.status_code == 504
    line = logged(origin, "given-up")
    assert (line["status"], line["detail"]) == (499, "the client left before the delayed answer")
    assert line["duration_ms"] < 4000, "ended when the proxy gave up, not after the delay"


def test_nginx_streams_events_with_its_default_buffering(
    make_proxy: Callable[..., Proxy], origin: Origins
) -> None:
    """Defect 3: with proxy_buffering on (nginx's default), events arrive one at a time.

    echod's X-Accel-Buffering: no tells nginx not to buffer the stream.
    """
    proxy = make_proxy("nginx", NGINX.format(settings="        proxy_buffering on;"), origin.ports)
    with client(proxy) as http:
        began = time.monotonic()
        with http.stream("GET", "/api/stream?count=3&interval_ms=500") as response:
            arrivals = [
                time.monotonic() - began for line in response.iter_lines() if line.startswith("id:")
            ]
    assert len(arrivals) == 3
    assert arrivals[0] < 0.4, f"the first event was held back: {arrivals}"
    assert arrivals[2] - arrivals[0] > 0.5, f"the events arrived together: {arrivals}"


def test_the_http2_authority_reaches_the_report(
    make_proxy: Callable[..., Proxy], tmp_path: Path
) -> None:
    """Defect 4: behind Caddy speaking h2c to echod, the report shows the :authority."""
    (tmp_path / "h2c").mkdir()
    origins = Origins(tmp_path / "h2c", "--h2c", count=1).start()
    try:
        config = (
            "echod.example:443 {\n"
            "\ttls /etc/caddy/echod.example.pem /etc/caddy/echod.example.key\n"
            "\treverse_proxy 127.0.0.1:3000 127.0.0.1:3001 {\n"
            "\t\ttransport http {\n\t\t\tversions h2c\n\t\t}\n\t}\n}\n"
        )
        proxy = make_proxy("caddy", config, origins.ports)
        with client(proxy) as http:
            report = http.get("/api/inspect").json()
    finally:
        origins.close()
    assert report["httpVersion"] == "2"
    assert report["authority"] == f"localhost:{proxy.port}"


def test_a_forged_forwarded_hides_nothing_the_proxy_added(
    make_proxy: Callable[..., Proxy], origin: Origins
) -> None:
    """Defect 5: the proxy's X-Forwarded-For and the client's Forwarded are reported apart."""
    settings = "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"
    proxy = make_proxy("nginx", NGINX.format(settings=settings), origin.ports)
    with client(proxy) as http:
        report = http.get("/api/inspect", headers={"Forwarded": "for=198.51.100.66"}).json()
    assert report["forwarded"]["forwarded"] == [{"for": "198.51.100.66"}]
    assert report["forwarded"]["xForwardedFor"] == ["127.0.0.1"]


def test_a_handshake_that_lost_its_upgrade_is_a_426_that_says_so(
    make_proxy: Callable[..., Proxy], origin: Origins
) -> None:
    """Defect 6: behind nginx's defaults, which drop Upgrade, the answer says what happened."""
    proxy = make_proxy("nginx", DEFAULT["nginx"], origin.ports)
    handshake = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    with client(proxy) as http:
        response = http.get("/api/raw", headers=handshake)
    assert response.status_code == 426
    assert "a proxy in front dropped its Upgrade" in response.json()["detail"]


def test_a_same_origin_websocket_opens_behind_host_without_its_port(
    make_proxy: Callable[..., Proxy], origin: Origins
) -> None:
    """Defect 7: nginx's Host $host drops the port; X-Forwarded-Host $http_host keeps it.

    A browser on https://localhost:PORT sends that Origin, which echod compared with Host
    alone, and refused (403).
    """
    settings = (
        UPGRADE + "\n        proxy_set_header Host $host;"
        "\n        proxy_set_header X-Forwarded-Host $http_host;"
    )
    proxy = make_proxy("nginx", NGINX.format(settings=settings), origin.ports)
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with connect(
        f"wss://localhost:{proxy.port}/api/raw",
        additional_headers={"Authorization": AUTH_HEADER},
        origin=Origin(f"https://localhost:{proxy.port}"),
        ssl=context,
        open_timeout=10,
    ) as websocket:
        websocket.send("same site")
        assert websocket.recv(timeout=10) == "same site"


def test_a_stream_cut_by_a_drain_says_so_and_resumes_elsewhere(
    make_proxy: Callable[..., Proxy], tmp_path: Path
) -> None:
    """Defect 9: a drain ends the stream with event: shutdown; Last-Event-ID resumes it.

    nginx sends to the first echod, and to the second (a backup) once the first stops.
    """
    for name in "ab":
        (tmp_path / name).mkdir()
    first, second = (Origins(tmp_path / name, "--drain-delay", "0", count=1) for name in "ab")
    for origins in (first, second):
        origins.start()
    try:
        config = NGINX.format(settings="").replace(
            "server 127.0.0.1:3001;", "server 127.0.0.1:3001 backup;"
        )
        proxy = make_proxy("nginx", config, [*first.ports, *second.ports])
        with client(proxy) as http:
            lines: list[str] = []
            with http.stream("GET", "/api/stream?count=20&interval_ms=300") as response:
                for line in response.iter_lines():
                    lines.append(line)
                    if line == "id: 2":
                        first.echods[0].signal(signal.SIGTERM)
            assert lines[0] == "retry: 1000"
            assert "event: shutdown" in lines
            last = [line for line in lines if line.startswith("id: ")][-1].removeprefix("id: ")
            assert json.loads(lines[lines.index("event: shutdown") + 1].removeprefix("data: ")) == {
                "lastEventId": int(last)
            }
            time.sleep(1)  # the retry: the stream asked for
            resumed = http.get(
                "/api/stream?count=20&interval_ms=0", headers={"Last-Event-ID": last}
            )
        ids = [int(line[4:]) for line in resumed.text.splitlines() if line.startswith("id: ")]
        assert ids == list(range(int(last) + 1, 21))
        assert "event: shutdown" not in resumed.text
    finally:
        first.close()
        second.close()


def test_granian_still_decodes_an_encoded_slash_before_echod_routes(origin: Origins) -> None:
    """Defect 8, where granian forces it: echod cannot tell /api%2Finspect from /api/inspect.

    So the shipped configurations refuse %2F at the proxy (the matrix's path-variants). This
    fails once granian gives the raw path (docs/upstream.md, report 9): then echod refuses
    it itself.
    """
    with socket.create_connection(("127.0.0.1", origin.ports[0]), timeout=5) as conn:
        conn.sendall(
            b"GET /api%2Finspect HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Authorization: " + AUTH_HEADER.encode() + b"\r\n\r\n"
        )
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
    assert b'"path":"/api/inspect"' in answer
