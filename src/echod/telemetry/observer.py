"""Observer: each answered request, recorded once, into its metric slot and its log line."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from echod.telemetry.access_log import AccessLog
    from echod.telemetry.metric_layout import Recorder
    from echod.telemetry.records import RequestRecord

__all__ = ["Observer"]


class Observer:
    """Records each answered request once: a log line and a metrics observation."""

    __slots__ = ("_log", "_recorder")

    def __init__(self, log: AccessLog, recorder: Recorder) -> None:
        """Feed ``log`` and ``recorder``."""
        self._log = log
        self._recorder = recorder

    def record(self, record: RequestRecord) -> None:
        """Count ``record`` under its route's tally, then log it.

        A WebSocket, and a request to a route that is not timed (``/api/inspect`` and
        ``/api/stream``), is counted in ``http_requests_total`` but not in the durations:
        it lasts as long as its client asks, and would set off the latency alerts.
        """
        tally = record.tally
        if tally.timed and record.websocket is None:
            self._recorder.observe(record.status, record.method, tally, record.duration_ms)
        else:
            self._recorder.count(record.status, record.method, tally)
        self._log.request(record)
