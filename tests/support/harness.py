"""The app in this process: stand-ins for granian's RSGI scope and protocol, and a harness.

The harness wires the app as a worker does, with a real metrics store and registry, a
real state in the runtime directory's kind of file (smaller), and the real access log
writing into a pipe, so tests read back what a request logged, counted and remembered.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from granian.rsgi import ProtocolClosed  # type: ignore[attr-defined]

from echod.http.factory import create_app
from echod.settings.config import Settings
from echod.state import local
from echod.telemetry.collectors import build_registry
from echod.telemetry.line_writer import LineWriter
from echod.telemetry.metric_layout import Layout
from echod.telemetry.metric_store import MetricsStore
from echod.telemetry.records import RequestRecord
from echod.version import __version__
from tests.support.users import ALICE

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from echod.http.app import EchoApp
    from echod.telemetry.exposition import Registry

#: The instance id the harness's app reports.
INSTANCE_ID = "00000000-0000-4000-8000-000000000000"
#: The bytes of the harness's state file: room for a few thousand entries.
STATE_BYTES = 512 * 1024


class FakeHeaders(dict[str, str]):
    """RSGI headers: lower-case names, ``get`` like a dict, one value per name."""

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``: here one at most."""
        return [self[name]] if name in self else []


class RepeatedHeaders:
    """RSGI headers as granian hands them: lower-case names, each with all its values in order."""

    def __init__(self, *pairs: tuple[str, str]) -> None:
        """Hold ``pairs`` of (name, value); a name may come more than once."""
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            self._values.setdefault(name.lower(), []).append(value)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        values = self._values.get(name)
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, in order; none is an empty list."""
        return list(self._values.get(name, []))


@dataclass
class FakeScope:
    """The parts of an RSGI scope echod reads."""

    method: str = "POST"
    path: str = "/api/echo"
    headers: FakeHeaders = field(default_factory=FakeHeaders)
    http_version: str = "1.1"
    client: str = "127.0.0.1:40000"
    server: str = "127.0.0.1:3000"
    scheme: str = "http"
    proto: str = "http"
    query_string: str = ""
    authority: str | None = None


@dataclass
class Response:
    """What the app answered."""

    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        """One response header by name."""
        return self.headers.get(name)


class StreamTransport:
    """What a streamed answer is sent through: each chunk is added to the response's body."""

    def __init__(self, response: Response) -> None:
        """Send into ``response``."""
        self._response = response

    async def send_bytes(self, data: bytes) -> None:
        """Add ``data`` to the body."""
        self._response.body += data


class FakeProto:
    """An RSGI HTTP protocol that hands out a body and records the response."""

    def __init__(
        self,
        body: bytes = b"",
        chunks: list[bytes] | None = None,
        closed: bool = False,
        leaves_after: float | None = None,
    ) -> None:
        """Serve ``body`` whole, or ``chunks`` when iterated; ``closed`` = the client left.

        ``leaves_after``: the client's connection closes that many seconds after
        ``client_disconnect()`` is first awaited (None: never, unless ``closed``).
        """
        self._body = body
        self._chunks = chunks if chunks is not None else [body]
        self._closed = closed
        self._leaves_after = leaves_after
        #: How many chunks of the body the app has read.
        self.chunks_read = 0
        #: How many answers had been given when the app began to read the body, if it did.
        self.answers_before_reading: int | None = None
        self.responses: list[Response] = []
        self.body_read = False
        self._readers: list[threading.Thread] = []

    async def __call__(self) -> bytes:
        """Return the whole body."""
        if self._closed:
            raise ProtocolClosed("RSGI transport is closed")
        if not self.body_read:  # inline: bench.instructions counts this path
            self.answers_before_reading = len(self.responses)
            self.body_read = True
        return self._body

    def _reading(self) -> None:
        if not self.body_read:
            self.answers_before_reading = len(self.responses)
        self.body_read = True

    def __aiter__(self) -> AsyncIterator[bytes]:
        """Yield the body in chunks."""

        async def chunks() -> AsyncIterator[bytes]:
            self._reading()
            for chunk in self._chunks:
                self.chunks_read += 1
                yield chunk

        return chunks()

    async def client_disconnect(self) -> None:
        """Return once the client has left: at once when ``closed``, else as told."""
        if self._closed:
            return
        if self._leaves_after is None:
            await asyncio.Event().wait()  # never
        else:
            await asyncio.sleep(self._leaves_after)

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """Record the response."""
        self.responses.append(Response(status, dict(headers), body))

    def response_empty(self, status: int, headers: list[tuple[str, str]]) -> None:
        """Record a response without a body."""
        self.responses.append(Response(status, dict(headers), b""))

    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> StreamTransport:
        """Record a streamed response; what is sent through it becomes its body."""
        self.responses.append(Response(status, dict(headers), b""))
        return StreamTransport(self.responses[-1])

    def response_file(self, status: int, headers: list[tuple[str, str]], file: str) -> None:
        """Record a file response; the file is read to its end, as granian would, on a thread.

        echod hands over a pipe this way (``/proc/self/fd/N``): it is opened and read
        while the app writes into it.
        """
        self.responses.append(Response(status, dict(headers), b""))
        response = self.responses[-1]
        opened = open(file, "rb")  # noqa: SIM115, PTH123 - closed by the reader

        def read() -> None:
            with opened:
                while chunk := opened.read(65536):
                    response.body += chunk

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        self._readers.append(reader)

    def finish(self) -> None:
        """Wait until every file response has been read to its end."""
        for reader in self._readers:
            reader.join(timeout=30)

    @property
    def response(self) -> Response:
        """The one response the app gave."""
        assert len(self.responses) == 1, self.responses
        return self.responses[0]


def new_record(
    method: str = "GET", path: str = "/api/echo", request_id: str = "rid-1"
) -> RequestRecord:
    """A request's record as the app makes it when the request arrives, for a handler alone."""
    return RequestRecord(
        method=method,
        path=path,
        tally=Layout().tally(path),
        http_version="1.1",
        request_id=request_id,
        remote="127.0.0.1:40000",
        started=time.perf_counter(),
    )


def quiet_app(
    directory: Path, log_fd: int, users: dict[str, bytes], jwks: bytes | None = None
) -> tuple[EchoApp, MetricsStore]:
    """The app as a worker builds it, at info, its lines to ``log_fd`` and kept buffered.

    What the hot path's measurements drive by hand: the metric store is in
    ``directory`` (close it after), and the log writer's flushes are never scheduled.
    """
    store = MetricsStore.create(directory / "metrics", Layout(), 2)
    app = create_app(
        Settings(),
        users=users,
        recorder=store.claim(),
        registry=build_registry(store, root_pid=os.getpid(), version=__version__),
        is_ready=lambda: True,
        instance_id=INSTANCE_ID,
        log_writer=LineWriter(log_fd),
        jwks=jwks,
    )
    app._log.bind(QuietLoop())  # type: ignore[arg-type]
    return app, store


class Harness:
    """An app wired to a real store and registry, logging into a pipe."""

    def __init__(
        self,
        tmp_path: Path,
        users: dict[str, bytes],
        jwks: bytes | None = None,
        **settings: Any,
    ) -> None:
        """Build the app as a worker would, with ``settings`` overriding the defaults.

        ``jwks`` is the key set in service, as a worker reads it from the runtime.
        """
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.store = MetricsStore.create(tmp_path / "metrics", Layout(), 2)
        self.registry: Registry = build_registry(
            self.store, root_pid=os.getpid(), version=__version__
        )
        self.ready = True
        self._read, write = os.pipe()
        local.create(tmp_path / "state", STATE_BYTES)
        self.state = local.LocalStore(tmp_path / "state")
        self.app: EchoApp = create_app(
            Settings(**settings),
            users=users,
            recorder=self.store.claim(),
            registry=self.registry,
            is_ready=lambda: self.ready,
            instance_id=INSTANCE_ID,
            log_writer=LineWriter(write),
            jwks=jwks,
            state=self.state,
        )
        self._write = write

    def request(
        self,
        method: str = "POST",
        path: str = "/api/echo",
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        proto: FakeProto | None = None,
        *,
        version: str = "1.1",
        host: str | None = "echod.test",
    ) -> FakeProto:
        """Send one request through the app and return the protocol that recorded it.

        ``version`` is the HTTP version as granian names it ("1" for 1.0); ``host`` is the
        Host header, or None for none. ``path`` may carry a query string after ``?``.
        """
        path, _, query = path.partition("?")
        all_headers = FakeHeaders({} if host is None else {"host": host})
        all_headers.update(headers or {})
        if body and "content-length" not in all_headers:
            all_headers["content-length"] = str(len(body))
        proto = proto or FakeProto(body)
        scope = FakeScope(method, path, all_headers, http_version=version, query_string=query)
        asyncio.run(self.app.__rsgi__(scope, proto))  # type: ignore[arg-type]
        proto.finish()
        return proto

    def authed(
        self, method: str = "POST", path: str = "/api/echo", body: bytes = b"", **headers: str
    ) -> FakeProto:
        """Send a request as alice."""
        return self.request(method, path, body, {"authorization": ALICE, **headers})

    def log_lines(self) -> list[dict[str, Any]]:
        """The request lines logged so far."""
        self.app._log.flush()
        os.set_blocking(self._read, False)
        try:
            data = os.read(self._read, 1 << 20)
        except BlockingIOError:
            return []
        return [json.loads(line) for line in data.decode().splitlines()]

    def count(self, status: str, method: str, path: str) -> float | None:
        """One http_requests_total sample."""
        labels = {"status": status, "method": method, "path": path}
        return self.registry.get_sample_value("http_requests_total", labels)

    def close(self) -> None:
        """Write the app's last lines, then release the pipe and the store.

        The app's lines go out from a thread of its own: the pipe is closed only once it
        has written them, so that none lands in the pipe of a later test that gets the
        same descriptor numbers.
        """
        self.app.close()
        os.close(self._read)
        os.close(self._write)
        self.store.close()
        self.state.close()


#: What the ``make_harness`` fixture is: settings in, an app that is closed with the test.
MakeHarness = Callable[..., Harness]


class _Handle:
    def cancel(self) -> None:
        """Nothing to cancel."""


class QuietLoop:
    """A loop stand-in whose timers never fire: log lines stay buffered until flushed."""

    def call_later(self, _delay: float, _callback: object) -> _Handle:
        """Take the timer and never run it."""
        return _Handle()
