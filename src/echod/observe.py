"""Observe: request ids, and the one record per request that feeds the log and the metrics."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from echod.logs import AccessLog
    from echod.metrics import Recorder

__all__ = ["Observer", "request_id"]

# A client's id is kept when it is safe to repeat in a header and a log line.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}").fullmatch


def request_id(given: str | None) -> str:
    """Return the client's ``X-Request-ID`` when it is 1-128 of ``[A-Za-z0-9._:-]``.

    Otherwise return a new UUID4.
    """
    if given is not None and _CLIENT_ID(given):
        return given
    return str(uuid.uuid4())


class Observer:
    """Records each answered request once: a log line and a metrics observation."""

    __slots__ = ("_log", "_recorder")

    def __init__(self, log: AccessLog, recorder: Recorder) -> None:
        """Feed ``log`` and ``recorder``."""
        self._log = log
        self._recorder = recorder

    def record(
        self,
        method: str,
        path: str,
        route: str,
        http_version: str,
        status: int,
        duration_ms: float,
        request_id: str,
        user: str | None,
        remote: str,
        error: BaseException | None = None,
    ) -> None:
        """Record one request; ``route`` is its metrics label, ``path`` what the client sent."""
        self._recorder.observe(status, method, route, duration_ms)
        self._log.request(
            method, path, http_version, status, duration_ms, request_id, user, remote, error
        )
