"""The hot path, piece by piece and whole, timed without a server.

``make test`` runs each once as a plain test (pytest-benchmark is disabled there);
``make microbench`` times them and compares with the last saved run, so a regression
in the per-request work shows without starting echod.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import TYPE_CHECKING

import pytest

from echod.http.auth import Authenticator
from echod.http.echo import echo
from echod.http.request_ids import RequestIds
from echod.settings.config import LogLevel
from echod.telemetry.access_log import AccessLog
from echod.telemetry.collectors import build_registry
from echod.telemetry.line_writer import LineWriter
from echod.telemetry.metric_layout import Layout
from echod.telemetry.metric_store import MetricsStore
from echod.telemetry.records import RequestRecord
from echod.version import __version__
from tests.support.harness import (
    FakeHeaders,
    FakeProto,
    FakeScope,
    QuietLoop,
    new_record,
    quiet_app,
)
from tests.support.users import ALICE, cheap_users

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from pytest_benchmark.fixture import BenchmarkFixture

    from echod.http.app import EchoApp

HEADER = ALICE
USERS = cheap_users(alice="wonderland")
KILOBYTE_OBJECT = (
    b'{"id": 1, ' + b", ".join(b'"field%02d": "%s"' % (n, b"x" * 24) for n in range(28)) + b"}"
)


@pytest.fixture
def devnull() -> Iterator[int]:
    """A descriptor that swallows log lines."""
    fd = os.open(os.devnull, os.O_WRONLY)
    yield fd
    os.close(fd)


@pytest.fixture
def app(tmp_path: Path, devnull: int) -> Iterator[EchoApp]:
    """The app as a worker builds it, logging at info to /dev/null."""
    made, store = quiet_app(tmp_path, devnull, USERS)
    yield made
    store.close()


def drive(app: EchoApp, scope: FakeScope, body: bytes) -> FakeProto:
    """Run one request to completion without an event loop (nothing in it waits)."""
    proto = FakeProto(body)
    coroutine = app.__rsgi__(scope, proto)  # type: ignore[arg-type]
    with contextlib.suppress(StopIteration):
        coroutine.send(None)
    return proto


def test_whole_request(benchmark: BenchmarkFixture, app: EchoApp) -> None:
    """Auth (verified before), echo, response, metrics and the log line of one request."""
    verifying = app._auth.authenticate(HEADER, new_record())
    assert verifying is not None
    asyncio.run(verifying)
    headers = FakeHeaders({"host": "echod.test", "authorization": HEADER, "content-length": "14"})
    scope = FakeScope("POST", "/api/echo", headers)
    proto = benchmark(drive, app, scope, b'{"foo": "bar"}')
    assert proto.response.status == 200
    assert proto.response.body == b'{"foo":"bar","echoed":true}\n'


@pytest.mark.parametrize(
    ("body", "size"),
    [(b'{"foo": "bar"}', "small"), (KILOBYTE_OBJECT, "1k")],
    ids=["small", "1k"],
)
def test_echo(benchmark: BenchmarkFixture, body: bytes, size: str) -> None:
    """Decoding, checking and encoding an object."""
    out = benchmark(echo, body)
    assert out.endswith(b',"echoed":true}'), size


def test_verified_credentials(benchmark: BenchmarkFixture) -> None:
    """Credentials bcrypt accepted before cost a lookup."""
    auth = Authenticator(USERS)
    verifying = auth.authenticate(HEADER, new_record())
    assert verifying is not None
    asyncio.run(verifying)
    record = new_record()
    assert benchmark(auth.authenticate, HEADER, record) is None
    assert record.user == "alice"


def test_new_request_id(benchmark: BenchmarkFixture) -> None:
    """A request without X-Request-ID gets a UUID4."""
    ids = RequestIds()
    assert len(benchmark(ids, None)) == 36


def test_log_line(benchmark: BenchmarkFixture, devnull: int) -> None:
    """Rendering and buffering one request line."""
    log = AccessLog(LogLevel.INFO, LineWriter(devnull))
    log.bind(QuietLoop())  # type: ignore[arg-type]
    record = RequestRecord(
        method="POST",
        path="/api/echo",
        tally=Layout().tally("/api/echo"),
        http_version="1.1",
        request_id="id-1",
        remote="127.0.0.1:1",
        started=0.0,
        status=200,
        duration_ms=0.12,
        user="alice",
    )
    benchmark(log.request, record)
    line = json.loads(log._writer._pending[-1])
    assert (line["path"], line["status"], line["userId"]) == ("/api/echo", 200, "alice")


def test_metrics_observation(benchmark: BenchmarkFixture, tmp_path: Path) -> None:
    """Counting one request into the shared store."""
    store = MetricsStore.create(tmp_path / "metrics", Layout(), 2)
    recorder = store.claim()
    benchmark(recorder.observe, 200, "POST", store.layout.tally("/api/echo"), 0.12)
    registry = build_registry(store, root_pid=os.getpid(), version=__version__)
    labels = {"status": "200", "method": "POST", "path": "/api/echo"}
    count = registry.get_sample_value("http_requests_total", labels)
    assert count is not None
    assert count >= 1
    assert registry.get_sample_value("http_request_duration_milliseconds_count") == count
    store.close()
