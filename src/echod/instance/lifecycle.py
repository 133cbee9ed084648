"""Lifecycle: the signals that stop an instance."""

from __future__ import annotations

import signal

__all__ = ["STOP_SIGNALS"]

#: The signals that stop echod: SIGTERM drains first (``--drain-delay``), SIGINT does not.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
