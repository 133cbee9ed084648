"""Logs on stdout: JSON lines only, one per request, no secrets, level by status."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx

from tests.support.users import AUTH, AUTH_HEADER, PASSWORD


def test_every_stdout_line_is_json_with_the_documented_fields(make_echod: Any) -> None:
    """Start lines, request lines and stop lines are all JSON; requests have every field."""
    echod = make_echod(tls=True)
    httpx.post(echod.url + "/api/echo", content=b"{}", auth=AUTH, headers={"x-request-id": "log-1"})
    [line] = [line for line in echod.request_lines() if line.get("requestId") == "log-1"]
    assert set(line) == {
        "time", "level", "message", "method", "path", "status", "duration_ms",
        "requestId", "userId", "authScheme", "remote",
    }  # fmt: skip
    assert line["message"] == "POST /api/echo HTTP/1.1"
    assert line["userId"] == "remarkablebob"
    assert line["authScheme"] == "basic"
    assert line["remote"].startswith("127.0.0.1:")
    echod.stop()
    assert all("time" in line and "level" in line for line in echod.log_lines())


def test_level_follows_status_and_log_level_filters(make_echod: Any) -> None:
    """At --log-level warning, 200s are dropped and 4xx are warnings."""
    echod = make_echod("--log-level", "warning")
    httpx.post(echod.url + "/api/echo", content=b"{}", auth=AUTH)
    httpx.post(echod.url + "/api/echo", content=b"[]", auth=AUTH)
    httpx.post(echod.url + "/api/echo", content=b"{}")
    lines = echod.request_lines()
    assert [(line["status"], line["level"]) for line in lines] == [
        (400, "warning"),
        (401, "warning"),
    ]


def test_no_password_or_authorization_reaches_the_log(make_echod: Any) -> None:
    """Neither good nor bad credentials are written, in any form."""
    echod = make_echod("--log-level", "debug")
    wrong = "Basic " + base64.b64encode(b"remarkablebob:letmein").decode()
    httpx.post(echod.url + "/api/echo", content=b"{}", auth=AUTH)
    httpx.post(echod.url + "/api/echo", content=b"{}", headers={"authorization": wrong})
    httpx.get(echod.url + "/nope", headers={"authorization": "Bearer s3cr3t-token"})
    echod.request_lines()
    echod.stop()
    out = echod.stdout()
    for secret in (PASSWORD, "letmein", "s3cr3t-token", AUTH_HEADER.split()[1], wrong.split()[1]):
        assert secret not in out


def test_hostile_headers_cannot_inject_lines(make_echod: Any) -> None:
    """A request id with control characters is replaced; the path is escaped."""
    echod = make_echod()
    with httpx.Client(auth=AUTH) as client:
        client.get(echod.url + '/x%0d%0a{"level":"info"}')
        client.post(echod.url + "/api/echo", content=b"{}", headers={"x-request-id": "a\tb"})
    lines = echod.request_lines()
    assert len(lines) == 2
    assert lines[1]["requestId"] != "a\tb"


def test_lines_of_12_kb_paths_from_two_workers_never_interleave(make_echod: Any) -> None:
    """Every line fits PIPE_BUF, so lines from two workers on one pipe stay whole."""
    echod = make_echod("--workers", "2")

    async def flood() -> list[int]:
        async with httpx.AsyncClient(base_url=echod.url, auth=AUTH, timeout=30) as client:

            async def one(n: int) -> int:
                path = f"/{n:04d}" + "p" * 12_000
                return (await client.get(path)).status_code

            return await asyncio.gather(*(one(n) for n in range(200)))

    assert set(asyncio.run(flood())) == {404}
    echod.stop()
    raw = echod.stdout().encode()
    lines = raw.splitlines()
    assert max(len(line) + 1 for line in lines) <= 4096
    requests = [json.loads(line) for line in lines if b'"status"' in line]
    assert len(requests) == 200
    for line in requests:
        assert line["path"].startswith("/")
        assert line["path"].endswith(" more]")
    assert {line["path"][:5] for line in requests} == {f"/{n:04d}" for n in range(200)}
