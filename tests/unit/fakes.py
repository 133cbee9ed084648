"""Stand-ins for granian's RSGI scope and protocol, so the app runs without a server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from granian.rsgi import ProtocolClosed  # type: ignore[attr-defined]

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class FakeHeaders(dict[str, str]):
    """RSGI headers: lower-case names, ``get`` like a dict."""


@dataclass
class FakeScope:
    """The parts of an RSGI scope echod reads."""

    method: str = "POST"
    path: str = "/api/echo"
    headers: FakeHeaders = field(default_factory=FakeHeaders)
    http_version: str = "1.1"
    client: str = "127.0.0.1:40000"
    scheme: str = "http"
    proto: str = "http"
    query_string: str = ""


@dataclass
class Response:
    """What the app answered."""

    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        """One response header by name."""
        return self.headers.get(name)


class FakeProto:
    """An RSGI HTTP protocol that hands out a body and records the response."""

    def __init__(
        self, body: bytes = b"", chunks: list[bytes] | None = None, closed: bool = False
    ) -> None:
        """Serve ``body`` whole, or ``chunks`` when iterated; ``closed`` = the client left."""
        self._body = body
        self._chunks = chunks if chunks is not None else [body]
        self._closed = closed
        self.responses: list[Response] = []
        self.body_read = False

    async def __call__(self) -> bytes:
        """Return the whole body."""
        if self._closed:
            raise ProtocolClosed("RSGI transport is closed")
        self.body_read = True
        return self._body

    def __aiter__(self) -> AsyncIterator[bytes]:
        """Yield the body in chunks."""

        async def chunks() -> AsyncIterator[bytes]:
            self.body_read = True
            for chunk in self._chunks:
                yield chunk

        return chunks()

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """Record the response."""
        self.responses.append(Response(status, dict(headers), body))

    @property
    def response(self) -> Response:
        """The one response the app gave."""
        assert len(self.responses) == 1, self.responses
        return self.responses[0]
