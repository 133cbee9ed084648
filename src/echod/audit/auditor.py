"""Auditor: what every check of the audit shares, and how it sends through the proxy.

An :class:`Audit` holds the proxy under audit, the options of the command line and the
credentials, names each request with an id of its own (``audit-<run>-<n>-<what>``), and
sends requests byte by byte (:mod:`echod.audit.wire`) or, for the checks that need
HTTP/2 or a kept-alive connection, with httpx, which it imports only then, so that
echod's serving processes never load it.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from echod.audit.wire import Answer, exchange, request

if TYPE_CHECKING:
    from pathlib import Path

    from echod.audit.wire import Target

__all__ = ["Audit", "Options"]


@dataclass
class Options:
    """What the command line asks of the audit."""

    user: str = "remarkablebob:2rFtex"
    #: Bytes of the bodies of check 10; they must be over the limits in front of echod.
    body_bytes: int = 2 * 1024 * 1024
    #: Milliseconds of the delay of check 12: longer than the proxy's read timeout.
    delay_ms: int = 10_000
    #: Bytes of the header of check 11: over the limits in front of echod.
    header_bytes: int = 64 * 1024
    #: echod's log files, one per echod behind the proxy (check 12 finds its 499 there).
    origin_logs: list[Path] = field(default_factory=list)
    #: The pids of the echod processes behind the proxy (``--include reload``).
    origin_pids: list[int] = field(default_factory=list)
    #: Which checks to run, by name; empty: all.
    only: set[str] = field(default_factory=set)
    reload: bool = False


class Audit:
    """The checks through one proxy, with what they share: the target and the credentials."""

    def __init__(self, target: Target, options: Options) -> None:
        """Audit ``target`` as ``options`` say."""
        self.target = target
        self.options = options
        self.authorization = "Basic " + base64.b64encode(options.user.encode()).decode()
        self.instances: set[str] = set()
        #: This run of the audit, in every request id it makes.
        self.run_id = uuid.uuid4().hex[:8]
        self._count = 0

    def request_id(self, what: str) -> str:
        """A request id of this run, which names what it is for."""
        self._count += 1
        return f"audit-{self.run_id}-{self._count}-{what}"

    def raw(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        *,
        rid: str | None = None,
        authority: str | None = None,
        timeout: float | None = None,
    ) -> tuple[bytes, Answer]:
        """Send one request on a new connection, with the credentials; the bytes and the answer."""
        given = [("Authorization", self.authorization)]
        if rid is not None:
            given.append(("X-Request-ID", rid))
        given += headers or []
        sent = request(method, path, authority or self.target.authority, given, body)
        answer = exchange(self.target, sent, method=method, timeout=timeout)
        report = answer.report()
        if report is not None:
            self.instances.add(str(report.get("instance", {}).get("id", "")))
        return sent, answer

    def inspect(
        self, what: str, headers: list[tuple[str, str]] | None = None, *, path: str = "/api/inspect"
    ) -> tuple[str, Answer, dict[str, Any] | None]:
        """``GET /api/inspect`` with ``headers``: the request id, the answer and echod's report."""
        rid = self.request_id(what)
        _, answer = self.raw("GET", path, headers, rid=rid)
        return rid, answer, answer.report()

    def reaches(self) -> str | None:
        """Why the proxy does not reach an echod, or None when it does."""
        rid, answer, report = self.inspect("reach")
        if report is None:
            return f"GET /api/inspect through {self.target.url} answered {answer.said()}"
        if report.get("requestId") != rid:
            other = report.get("requestId")
            return f"GET /api/inspect answered the report of another request ({other})"
        return None

    def http_client(self, httpx: Any, *, http2: bool = False) -> Any:  # noqa: ANN401 - httpx, imported late
        """An httpx client of the proxy, with the credentials: HTTP/1.1, or h2 too."""
        context = self.target.tls_context(("h2", "http/1.1") if http2 else ("http/1.1",))
        return httpx.Client(
            base_url=self.target.url,
            headers={"Authorization": self.authorization},
            verify=context,
            http2=http2,
            timeout=self.target.timeout,
        )
