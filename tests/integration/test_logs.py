"""Logs on stdout: JSON lines only, one per request, no secrets, level by status."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from tests.integration.support import AUTH, AUTH_HEADER, PASSWORD


def test_every_stdout_line_is_json_with_the_documented_fields(make_echod: Any) -> None:
    """Start lines, request lines and stop lines are all JSON; requests have every field."""
    echod = make_echod(tls=True)
    httpx.post(echod.url + "/api/echo", content=b"{}", auth=AUTH, headers={"x-request-id": "log-1"})
    [line] = [line for line in echod.request_lines() if line.get("requestId") == "log-1"]
    assert set(line) == {
        "time", "level", "message", "method", "path", "status", "duration_ms",
        "requestId", "userId", "remote",
    }  # fmt: skip
    assert line["message"] == "POST /api/echo HTTP/1.1"
    assert line["userId"] == "remarkablebob"
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
