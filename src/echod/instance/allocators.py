"""Allocators: memory that a burst of large bodies took goes back to the system after it.

A serving process allocates through two allocators, and left to their defaults both keep
what a burst took. :func:`tune` sets them before granian is imported:

- granian's Rust side allocates with jemalloc, which returns freed pages only as it
  allocates again: an instance that goes idle after a burst keeps them. With a background
  thread, one arena (granian runs one Rust thread per server) and a decay of a second,
  they are returned a second after the burst. ``_RJEM_MALLOC_CONF``, if set, wins.
- Python's large objects (bodies, their decoded strings) come from the C library's
  ``malloc``. glibc raises its mmap threshold each time such a block is freed, so that
  later ones come from the heap, where they stay. Fixing the threshold at its starting
  value (128 KiB) keeps every block that large in a mapping of its own, unmapped when
  freed. Where there is no glibc, this step does nothing.
"""

from __future__ import annotations

import ctypes
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import MutableMapping

__all__ = ["JEMALLOC_CONF", "MMAP_THRESHOLD", "tune"]

#: Read by jemalloc as granian's module loads, unless ``_RJEM_MALLOC_CONF`` says otherwise.
JEMALLOC_CONF = "background_thread:true,narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0"
#: Bytes from which glibc's malloc maps a block of its own: its initial value, kept fixed.
MMAP_THRESHOLD = 128 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h


def tune(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Set both allocators; True if glibc's threshold was fixed (False without glibc)."""
    environ.setdefault("_RJEM_MALLOC_CONF", JEMALLOC_CONF)
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
