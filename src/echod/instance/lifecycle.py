"""Lifecycle: the signals that stop an instance, and the pace at which workers are replaced."""

from __future__ import annotations

import signal

__all__ = ["RESPAWN_INTERVAL", "STOP_SIGNALS"]

#: The signals that stop echod.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: Seconds a new worker serves beside the one it replaces before that one is stopped.
#: A worker serves about 20 ms after it is started, even under load.
RESPAWN_INTERVAL = 1.0
