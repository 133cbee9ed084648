"""Wire: requests written byte by byte to the proxy, and its answers read back.

Most checks must say exactly what was sent, and some send what no well-behaved client
library would (two ``Content-Length`` headers, a ``Transfer-Encoding`` with a space before
its colon), so they write HTTP/1.1 themselves, over TCP or TLS, and read the answer with
the standard library's parser. Each exchange has its own connection.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

__all__ = ["CRLF", "Answer", "Target", "exchange", "request"]

CRLF = "\r\n"
#: The most bytes of an answer's body that are read.
_MOST = 4 * 1024 * 1024


@dataclass(frozen=True)
class Target:
    """The proxy under audit: where it listens, and how to talk to it."""

    scheme: str
    host: str
    port: int
    #: The authority as the URL gives it, sent as ``Host``.
    authority: str
    insecure: bool = False
    #: Seconds any one step (connect, send, read) may take.
    timeout: float = 10.0

    @classmethod
    def parse(cls, url: str, *, insecure: bool = False, timeout: float = 10.0) -> Target:
        """The target of ``--through``: an ``http`` or ``https`` URL with a host.

        Raises:
            ValueError: another scheme, no host, or a path other than ``/``.
        """
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"{url!r} is not an http:// or https:// URL with a host")
        if parts.path not in {"", "/"} or parts.query or parts.fragment:
            raise ValueError(f"{url!r}: give the proxy's base URL, without a path")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as error:
            raise ValueError(f"{url!r}: {error}") from None
        return cls(parts.scheme, parts.hostname, port, parts.netloc, insecure, timeout)

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        return f"{self.scheme}://{self.authority}"

    @property
    def origin(self) -> str:
        """The origin a browser on this site sends: scheme, host and port as given."""
        return self.url

    def tls_context(self, alpn: tuple[str, ...] = ("http/1.1",)) -> ssl.SSLContext:
        """A client context: verifying, unless ``--insecure``."""
        context = ssl.create_default_context()
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(list(alpn))
        return context

    def connect(self, timeout: float | None = None) -> socket.socket:
        """A new connection to the proxy, over TLS for ``https``."""
        wait = self.timeout if timeout is None else timeout
        raw = socket.create_connection((self.host, self.port), timeout=wait)
        if self.scheme != "https":
            return raw
        try:
            return self.tls_context().wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


@dataclass
class Answer:
    """What came back from one exchange, or why nothing did."""

    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    #: Why there is no whole answer: a reset, a close, a timeout.
    error: str | None = None
    #: The client's address on its connection to the proxy.
    local: str = ""
    #: Seconds from the request's last byte sent to the answer's end.
    took: float = 0.0

    def header(self, name: str) -> str | None:
        """The first value of the answer's header ``name``, or None."""
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)

    def report(self) -> dict[str, Any] | None:
        """The ``/api/inspect`` report in this answer, or None if it is not one."""
        if self.status is None or not self.body.startswith(b"{"):
            return None
        try:
            found = json.loads(self.body)
        except ValueError:
            return None
        if not isinstance(found, dict) or "requestId" not in found or "headers" not in found:
            return None
        return found

    def said(self) -> str:
        """The answer in a few words: ``200``, ``413 application/problem+json``, or the error."""
        if self.status is None:
            return f"no answer ({self.error})"
        kind = self.header("content-type")
        return f"{self.status}" + (f" {kind}" if kind else "")


def request(
    method: str,
    target: str,
    authority: str,
    headers: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
    *,
    length: bool = True,
) -> bytes:
    """An HTTP/1.1 request: ``Host`` first, then ``headers`` as given, then the body.

    With ``length``, a ``Content-Length`` of the body is added when there is a body and
    the headers give no framing of their own.
    """
    lines = [f"{method} {target} HTTP/1.1", f"Host: {authority}"]
    lines += [f"{name}: {value}" for name, value in headers]
    framed = any(name.lower() in {"content-length", "transfer-encoding"} for name, _ in headers)
    if body and length and not framed:
        lines.append(f"Content-Length: {len(body)}")
    return (CRLF.join(lines) + CRLF + CRLF).encode("latin-1") + body


def exchange(
    target: Target, raw: bytes, *, method: str = "GET", timeout: float | None = None
) -> Answer:
    """Send ``raw`` on a new connection and read one answer; never raises for the network."""
    answer = Answer()
    wait = target.timeout if timeout is None else timeout
    try:
        with target.connect(wait) as conn:
            answer.local = conn.getsockname()[0]
            try:
                conn.sendall(raw)
            except OSError as error:  # the proxy may answer and close before all is sent
                answer.error = f"sending: {error}"
            sent = time.monotonic()
            response = http.client.HTTPResponse(conn, method=method)
            response.begin()
            answer.status = response.status
            answer.headers = list(response.getheaders())
            answer.body = response.read(_MOST)
            answer.took = time.monotonic() - sent
            answer.error = None
    except (OSError, http.client.HTTPException, ssl.SSLError) as error:
        answer.error = _why(error)
    return answer


def _why(error: BaseException) -> str:
    """An error in a few words, its kind first."""
    if isinstance(error, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(error, ConnectionResetError):
        return "connection reset"
    if isinstance(error, http.client.RemoteDisconnected):
        return "closed without an answer"
    if isinstance(error, http.client.IncompleteRead):
        return "answer cut short"
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"
