"""WebSocket: the echo and the raw echo over WebSocket, with the HTTP side's auth and limits.

A WebSocket starts as ``GET`` with ``Upgrade: websocket`` on a route that takes them
(:data:`echod.routes.ROUTES`), and goes through the app as every request does
(:mod:`echod.http.app`). Before the upgrade, in this order: it must be a GET over
HTTP/1.1 (400), the credentials must be good (401), the route must take WebSockets
(404), an ``Origin`` that names another host than ``Host`` and than the one
``X-Forwarded-Host`` (or ``Forwarded``'s ``host=``) names must be listed (403, against
cross-site WebSocket hijacking; :func:`origin_allowed`), and the worker must have room
and not be draining (503). granian writes the 101 and a refusal itself, a refusal as the
bare status: RSGI's ``accept()`` and ``close(status)`` take no headers and no body.

After the upgrade, each message gets one answer, on ``/api/echo`` the echoed object or
a problem object (as text, without a newline), on ``/api/raw`` the message itself. A
message over ``--max-body-bytes`` gets a 413 problem, and the connection is closed. So
is one that stays silent for ``--ws-idle-timeout``, and every one when the instance
drains. granian sends its close frame without a status code whatever echod asks for, so
clients see 1005. One log line per connection is written when it closes.

While any WebSocket is open, the process reads its own memory (RSS) ten times a second.
Past ``--ws-memory-limit``, and still growing, it closes all its WebSockets: granian
answers every ping with a pong queued without bound for a client that never reads
(docs/upstream.md), and keeps a fragmented message of up to 64 MiB, where no
message of echod's comes to see it. Closing the connection is what frees that memory,
and granian's own close waits behind the queued pongs for as long as the client holds
the connection, so echod shuts the connection's socket down itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from granian.rsgi import ProtocolClosed, ProtocolError  # type: ignore[attr-defined]

from echod.http.drain import IDLE, SHUTDOWN, IdleTimer
from echod.http.echo import echo
from echod.http.forwarded import elements
from echod.http.problems import (
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Problem,
    ServiceUnavailable,
    UnsupportedMediaType,
    render_problem,
)
from echod.procfs import resident_bytes, socket_fds
from echod.telemetry.metric_layout import MESSAGE_IN, MESSAGE_OUT
from echod.telemetry.records import Traffic

if TYPE_CHECKING:
    from granian._granian import RSGIWebsocketProtocol, RSGIWebsocketTransport
    from granian.rsgi import Headers, Scope, WebsocketMessage  # type: ignore[attr-defined]

    from echod.http.cors import Cors
    from echod.http.drain import Drain
    from echod.routes import Route
    from echod.telemetry.metric_layout import Recorder
    from echod.telemetry.records import RequestRecord

__all__ = [
    "MEMORY",
    "MEMORY_POLL",
    "SocketLimits",
    "WebSockets",
    "origin_allowed",
    "same_origin",
]

log = logging.getLogger("echod")

#: The reason a WebSocket's task is cancelled with when its process is over the limit.
MEMORY = "memory"
#: Seconds between two reads of the process's memory while WebSockets are open.
MEMORY_POLL = 0.1

# The kind of a close message (granian.rsgi.WebsocketMessageType.close).
_CLOSE = 0
_IP = {socket.AF_INET, socket.AF_INET6}
_DEFAULT_PORTS = {"http": "80", "ws": "80", "https": "443", "wss": "443"}


@dataclass(frozen=True, slots=True)
class SocketLimits:
    """The bounds of a worker's WebSockets."""

    #: The largest message, in bytes (``--max-body-bytes``).
    max_message_bytes: int
    #: Seconds without a message from the client before the connection is closed.
    idle_timeout: float
    #: Open connections of this worker; one more is refused with 503.
    max_connections: int
    #: Bytes of the process's memory (RSS) past which all its WebSockets are closed.
    memory_limit: int


def same_origin(origin: str, host: str | None) -> bool:
    """Whether the ``Origin`` header names the host and port that ``Host`` names."""
    scheme, separator, rest = origin.partition("://")
    if not separator or not host:
        return False
    default = _DEFAULT_PORTS.get(scheme.lower(), "")

    def bare(authority: str) -> str:
        authority = authority.lower()
        return authority.removesuffix(f":{default}") if default else authority

    return bare(rest.split("/", 1)[0]) == bare(host)


def origin_allowed(origin: str, headers: Headers) -> bool:
    """Whether ``Origin`` names this host, as the request reached echod or a proxy in front.

    A proxy in front may give echod another ``Host`` than the browser used (nginx's
    ``proxy_set_header Host $host`` drops the port), and say the browser's in
    ``X-Forwarded-Host`` (with ``X-Forwarded-Port``) or ``Forwarded: host=``. A page
    cannot set those headers on a WebSocket, so they cannot help another site's page in.
    """
    if same_origin(origin, headers.get("host")):
        return True
    ports = [
        port.strip()
        for value in headers.get_all("x-forwarded-port")  # type: ignore[attr-defined]
        for port in value.split(",")
    ]
    for value in headers.get_all("x-forwarded-host"):  # type: ignore[attr-defined]
        for item in value.split(","):
            host = item.strip()
            if same_origin(origin, host):
                return True
            bare = ports and ":" not in host.rpartition("]")[2]
            if bare and any(same_origin(origin, f"{host}:{port}") for port in ports):
                return True
    forwarded_hosts = (
        element["host"]
        for element in elements(headers.get_all("forwarded"))  # type: ignore[attr-defined]
        if "host" in element
    )
    return any(same_origin(origin, host) for host in forwarded_hosts)


class WebSockets:
    """Serves the WebSockets of one worker: the checks before the upgrade, then the messages.

    The app authenticates the handshake and records it, as it does every request.
    """

    def __init__(
        self,
        *,
        recorder: Recorder,
        drain: Drain,
        limits: SocketLimits,
        cors: Cors | None = None,
    ) -> None:
        """Count messages with ``recorder``; refuse a foreign ``Origin`` unless ``cors`` has it."""
        self._recorder = recorder
        self._drain = drain
        self._limits = limits
        self._cors = cors
        self._open = 0
        #: The task of each open connection, with its client and server addresses.
        self._tasks: dict[asyncio.Task[object], tuple[str, str]] = {}
        self._guard: asyncio.Future[None] | None = None

    @staticmethod
    def check_opening(scope: Scope) -> None:
        """Check what is checked before the credentials: a GET over HTTP/1.1.

        Raises:
            BadRequest: another method, or another HTTP version.
        """
        if scope.method != "GET" or scope.http_version != "1.1":
            raise BadRequest("a WebSocket opens with a GET over HTTP/1.1 (RFC 6455 4.1)")

    async def serve(
        self,
        scope: Scope,
        proto: RSGIWebsocketProtocol,
        route: Route | None,
        record: RequestRecord,
        *,
        closing: bool = False,
    ) -> None:
        """Upgrade an authenticated handshake to ``route``, then answer until it closes.

        ``record`` gets the status 101 and what went through the connection. ``closing``
        says that its server is being replaced.

        Raises:
            Problem: before the upgrade, the route takes no WebSocket (404), the
                ``Origin`` is another site's (403), or the worker has no room or is
                stopping (503).
        """
        if route is None or route.websocket is None:
            raise NotFound(f"no WebSocket route matches the path {scope.path!r}")
        headers = scope.headers
        origin = headers.get("origin")
        if (
            origin is not None
            and not origin_allowed(origin, headers)
            and (self._cors is None or not self._cors.allows(origin))
        ):
            raise Forbidden(f"the Origin {origin!r} is not this host's, nor listed")
        if self._drain.stopping or closing:
            raise ServiceUnavailable("this worker is stopping (a reload replaces it)")
        if self._drain.draining:
            raise ServiceUnavailable("echod is shutting down")
        if self._open >= self._limits.max_connections:
            raise ServiceUnavailable(
                f"this worker holds {self._limits.max_connections} WebSockets already"
            )
        record.status = 101
        record.websocket = Traffic()
        await self._converse(proto, route.websocket, record, scope.server)

    async def _converse(
        self, proto: RSGIWebsocketProtocol, kind: str, record: RequestRecord, server: str
    ) -> None:
        """Answer each message until the client, the idle timeout or a drain ends it.

        The receive is awaited right here, and the idle timer and the drain cancel this
        task to end it: granian's transport only closes its connection cleanly after a
        close it started itself (bad UTF-8) when its receive is awaited directly, not
        through ``asyncio.wait`` or ``wait_for``.
        """
        traffic = record.websocket
        if traffic is None:
            raise RuntimeError("a WebSocket is served without its traffic record")
        transport = await proto.accept()
        task = asyncio.current_task()
        if task is None:  # granian runs each request as a task
            raise RuntimeError("a WebSocket is served outside of a task")
        self._open += 1
        self._recorder.connections(1)
        self._tasks[task] = (record.remote, server)
        if self._guard is None or self._guard.done():
            self._guard = asyncio.ensure_future(self._watch_memory())
        idle = IdleTimer(task, self._limits.idle_timeout)
        try:
            with self._drain.cancelling(task, record.server):
                await self._exchange(transport, idle, kind, record, traffic)
        except asyncio.CancelledError as cancelled:
            if cancelled.args not in {(IDLE,), (SHUTDOWN,), (MEMORY,)}:
                raise  # not ours: let it go on
            task.uncancel()
            traffic.closed_by = cancelled.args[0]
        except (ProtocolClosed, ProtocolError):  # the client went away, or sent bad UTF-8
            traffic.closed_by = "client"
        finally:
            idle.stop()
            self._tasks.pop(task, None)
            self._open -= 1
            self._recorder.connections(-1)
            proto.close(None)

    async def _watch_memory(self) -> None:
        """Close every WebSocket when the process's memory is over the limit and growing.

        Memory that falls is memory being handed back (echod.instance.allocators): the
        connections opened meanwhile are left alone.
        """
        limit = self._limits.memory_limit
        previous = 0
        while self._tasks:
            rss = resident_bytes() or 0
            if rss > limit and rss >= previous:
                log.warning(
                    "memory (RSS) of %d bytes is over --ws-memory-limit (%d): closing the "
                    "%d WebSockets of this process",
                    rss,
                    limit,
                    len(self._tasks),
                )
                for task in self._tasks:
                    task.cancel(MEMORY)
                _shut_down(set(self._tasks.values()))
            previous = rss
            await asyncio.sleep(MEMORY_POLL)

    async def _exchange(
        self,
        transport: RSGIWebsocketTransport,
        idle: IdleTimer,
        kind: str,
        record: RequestRecord,
        traffic: Traffic,
    ) -> None:
        """Answer messages until the client closes, or one over the limit closes."""
        tally = record.tally
        while True:
            message: WebsocketMessage = await transport.receive()  # type: ignore[assignment]
            if message.kind == _CLOSE:
                return
            idle.touch()
            data = message.data
            traffic.count_in(_size(data))
            self._recorder.message(tally, MESSAGE_IN)
            reply, closing = self._reply(kind, record, data)
            await _send(transport, reply)
            traffic.count_out(_size(reply))
            self._recorder.message(tally, MESSAGE_OUT)
            if closing:
                traffic.closed_by = "limit"
                return

    def _reply(
        self, kind: str, record: RequestRecord, data: bytes | str
    ) -> tuple[bytes | str, bool]:
        """The answer to one message, and whether the connection closes after it."""
        try:
            if _size(data) > self._limits.max_message_bytes:
                raise PayloadTooLarge(
                    f"the message is over the limit of {self._limits.max_message_bytes} bytes"
                )
            return _answer(kind, data), False
        except Problem as problem:
            closing = isinstance(problem, PayloadTooLarge)
            return render_problem(problem, record.path, record.request_id).decode(), closing


def _shut_down(connections: set[tuple[str, str]]) -> int:
    """Shut down the sockets of ``connections``; return how many were found.

    Each connection is named (client, server), as granian names them in the scope.
    """
    found = 0
    for fd in socket_fds():
        try:
            with socket.socket(fileno=os.dup(fd)) as sock:
                if sock.family not in _IP:
                    continue
                if (_address(sock.getpeername()), _address(sock.getsockname())) in connections:
                    sock.shutdown(socket.SHUT_RDWR)
                    found += 1
        except OSError:  # not connected (a listening socket), or gone meanwhile
            continue
    return found


def _address(address: tuple[str, int] | tuple[str, int, int, int]) -> str:
    """``host:port``, or ``[host]:port`` for IPv6, as granian writes a scope's addresses."""
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _answer(kind: str, data: bytes | str) -> bytes | str:
    """The reply to one message of ``kind`` ("echo" or "raw") within the size limit.

    Raises:
        Problem: the message cannot be echoed (400 for bad JSON, 415 for binary).
    """
    if kind == "raw":
        return data
    if isinstance(data, bytes):
        raise UnsupportedMediaType("binary messages are not supported; send JSON text")
    return echo(data.encode()).decode()


def _size(data: bytes | str) -> int:
    """The size of a message in bytes; text is counted as UTF-8 (ASCII without encoding)."""
    if isinstance(data, bytes) or data.isascii():
        return len(data)
    return len(data.encode())


async def _send(transport: RSGIWebsocketTransport, reply: bytes | str) -> None:
    if isinstance(reply, bytes):
        await transport.send_bytes(reply)
    else:
        await transport.send_str(reply)
