"""Bearer tokens against a real echod: HTTP and WebSocket, and a key rotation through the file."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from typing import TYPE_CHECKING, Any

import httpx
from websockets.asyncio.client import connect

from tests.support.material import replace
from tests.support.tokens import SigningKey, bearer, claims, key_set

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.processes import Echod

#: Seconds a reload may take here (about one per worker).
RELOAD_TIMEOUT = 20.0


def echo(echod: Echod, token: str, client: httpx.Client | None = None) -> httpx.Response:
    """An echo sent with ``token``."""
    headers = {"authorization": bearer(token)}
    if client is not None:
        return client.post("/api/echo", json={"a": 1}, headers=headers)
    return httpx.post(echod.url + "/api/echo", json={"a": 1}, headers=headers, timeout=10)


def test_a_token_passes_over_http_and_websocket(make_echod: Any, tmp_path: Path) -> None:
    """The echo answers an ES256 token on both, and the log names its sub and the scheme."""
    key = SigningKey.generate("ES256", kid="k1")
    jwks = tmp_path / "jwks.json"
    jwks.write_bytes(key_set(key))
    echod = make_echod("--jwt-jwks", str(jwks))
    token = key.sign(claims(sub="carol"))
    answer = echo(echod, token)
    assert (answer.status_code, answer.json()) == (200, {"a": 1, "echoed": True})

    async def converse() -> str:
        async with connect(
            echod.url.replace("http:", "ws:") + "/api/echo",
            additional_headers={"Authorization": bearer(token)},
        ) as socket:
            await socket.send('{"b": 2}')
            return str(await socket.recv())

    assert json.loads(asyncio.run(converse())) == {"b": 2, "echoed": True}
    lines = echod.request_lines()
    assert [(line["status"], line["userId"], line["authScheme"]) for line in lines] == [
        (200, "carol", "bearer"),
        (101, "carol", "bearer"),
    ]


def test_a_key_rotation_through_the_file_fails_no_request(make_echod: Any, tmp_path: Path) -> None:
    """Old key, both keys, new key: requests in a loop all through, none refused or lost.

    The file changes in place (each change noticed by its next look), as a Secret
    volume or a tool that writes the provider's JWKS would change it.
    """
    old, new = SigningKey.generate("ES256", kid="old"), SigningKey.generate("RS256", kid="new")
    jwks = tmp_path / "jwks.json"
    replace(jwks, key_set(old))
    echod = make_echod("--jwt-jwks", str(jwks), "--reload-interval", "0.2", "--workers", "2")
    old_token, new_token = old.sign(claims(ttl=600)), new.sign(claims(ttl=600))
    sent: list[int] = []
    errors: list[Exception] = []

    def loop_until_reloaded(count: int, token: str) -> None:
        deadline = time.monotonic() + RELOAD_TIMEOUT
        with httpx.Client(base_url=echod.url, timeout=10) as client:
            while len(echod.lines_starting("reloaded")) < count:
                assert time.monotonic() < deadline, "no reload"
                try:
                    sent.append(echo(echod, token, client).status_code)
                except httpx.TransportError as error:
                    errors.append(error)

    replace(jwks, key_set(old, new))  # the new key is published beside the old
    loop_until_reloaded(1, old_token)
    assert echo(echod, new_token).status_code == 200
    replace(jwks, key_set(new))  # clients have moved to the new key: the old one goes
    loop_until_reloaded(2, new_token)
    assert errors == []
    assert len(sent) > 10
    assert set(sent) == {200}
    refused = echo(echod, old_token)
    assert refused.status_code == 401
    assert "the token's key (kid) is not in the key set" in refused.headers["www-authenticate"]
    assert echod.metric('echod_reloads_total{result="success"}') == 2
    assert [line["jwtKeys"] for line in echod.lines_starting("reloaded")] == [2, 1]


def test_a_bad_key_set_keeps_the_old_keys_in_service(make_echod: Any, tmp_path: Path) -> None:
    """An error line naming the flag, a failure counted, and the old key still verifies."""
    key = SigningKey.generate("EdDSA", kid="k1")
    jwks = tmp_path / "jwks.json"
    replace(jwks, key_set(key))
    echod = make_echod("--jwt-jwks", str(jwks), "--reload-interval", "0")
    replace(jwks, b'{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]}')
    echod.signal(signal.SIGHUP)
    [error] = echod.wait_for_lines("reload failed")
    assert "--jwt-jwks=" in error["message"]
    assert "symmetric (oct)" in error["message"]
    assert echod.metric('echod_reloads_total{result="failure"}') == 1
    assert echo(echod, key.sign(claims())).status_code == 200


def test_a_bad_key_set_at_start_stops_echod_with_exit_2(make_echod: Any, tmp_path: Path) -> None:
    """Exit 2, and the message names the flag, the file and what is wrong."""
    jwks = tmp_path / "jwks.json"
    jwks.write_bytes(b'{"keys": []}')
    echod = make_echod("--jwt-jwks", str(jwks), start=False)
    echod.start(wait=False)
    assert echod.wait() == 2
    assert "--jwt-jwks=" in echod.stderr()
    assert "no signing keys" in echod.stderr()
