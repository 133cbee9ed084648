"""Downloads: ``/api/bytes/{n}`` sends n deterministic bytes, streamed, ranged and validated.

The bytes are :mod:`echod.http.payload`'s, for ``seed`` (0 by default), as
``application/octet-stream``, n from 0 to ``--max-download-bytes``. An answer over
:data:`WHOLE_BYTES` is streamed through a pipe at the client's pace
(:mod:`echod.http.pipes`), so that the process's memory does not grow with n.

- **Validators.** A strong ``ETag`` names n, the seed and the coding (``"bytes-10-0"``,
  ``"bytes-10-0-gzip"``): each coding is another representation. ``If-None-Match``
  naming it (or ``*``) is a 304.
- **Ranges.** ``Accept-Ranges: bytes``. A ``GET`` with one byte range gets 206 with
  ``Content-Range``, a range past the end 416 with ``Content-Range: bytes */n``, and
  ``If-Range`` with another tag (or a date) the whole 200 (:mod:`echod.http.ranges`).
  Several ranges are answered with the whole body, as RFC 9110 allows.
- **Codings.** The answer follows ``Accept-Encoding`` and ``encoding=``
  (:mod:`echod.http.negotiation`). A range counts the bytes themselves, so a ranged
  answer skips compression: a request with a ``Range`` is answered in identity. When
  identity is refused, or ``encoding=`` forces a coding, the ``Range`` is ignored and
  the whole body comes encoded (200).
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from granian.rsgi import ProtocolClosed, ProtocolError  # type: ignore[attr-defined]

from echod.http.answers import CLIENT_GONE, NO_STORE, send, stamp
from echod.http.codings import compress, encoder
from echod.http.controls import Controls
from echod.http.faults import SEED
from echod.http.negotiation import VARY, choose, forced, refuses_identity
from echod.http.payload import BLOCK, pieces
from echod.http.pipes import ClientGone, Pipe
from echod.http.problems import BadRequest
from echod.http.ranges import byte_range, if_range_holds, none_match
from echod.routes import BYTES
from echod.telemetry.metric_layout import ENCODED

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from granian.rsgi import HTTPProtocol, Scope  # type: ignore[attr-defined]

    from echod.telemetry.records import RequestRecord

__all__ = ["WHOLE_BYTES", "Downloads", "etag"]

#: Answers of at most this many bytes are made whole and sent at once; longer ones stream.
WHOLE_BYTES = BLOCK
_SIZE = re.compile(r"[0-9]{1,13}")
_OCTETS = ("content-type", "application/octet-stream")
_RANGES = ("accept-ranges", "bytes")


def etag(size: int, seed: int, coding: str | None) -> str:
    """The strong entity tag of ``size`` bytes of ``seed`` in ``coding`` (None: identity)."""
    return f'"bytes-{size}-{seed}"' if coding is None else f'"bytes-{size}-{seed}-{coding}"'


class Downloads:
    """The handler of ``/api/bytes/{n}`` (see :data:`echod.http.app.Handler`)."""

    def __init__(
        self, *, max_bytes: int, count: Callable[[int, str], None] = lambda _d, _c: None
    ) -> None:
        """Send up to ``max_bytes`` (``--max-download-bytes``); tell ``count`` of codings."""
        self._max_bytes = max_bytes
        self._count = count

    def __call__(
        self, scope: Scope, proto: HTTPProtocol, record: RequestRecord, body: bytes
    ) -> Coroutine[Any, Any, None] | None:
        """Answer with the bytes asked for, or their validators, or a part of them."""
        size = self._size(BYTES.argument(scope.path))
        controls = Controls(scope)
        seed = controls.integer("seed", SEED) or 0
        force = forced(controls)
        headers = scope.headers
        accept = headers.get("accept-encoding")
        coding = choose(accept, size, force)
        tag = etag(size, seed, coding)
        if none_match(headers.get("if-none-match"), tag):  # before Range (RFC 9110 13.2.2)
            proto.response_empty(304, stamp(record, 304, [NO_STORE, VARY, ("etag", tag)]))
            return None
        wanted = headers.get("range") if scope.method == "GET" else None
        # A range counts the bytes themselves: it is sent in identity, when that will do.
        if wanted is not None and (
            coding is None or (force is None and not refuses_identity(accept))
        ):
            ranged = self._ranged(wanted, headers.get("if-range"), size, seed)
            if ranged is not None:
                return self._part(proto, record, seed, size, ranged)
        answer = [_OCTETS, NO_STORE, VARY, ("etag", tag), _RANGES]
        if coding is not None:
            answer.append(("content-encoding", coding))
            self._count(ENCODED, coding)
        if size <= WHOLE_BYTES:
            content = b"".join(pieces(seed, 0, size))
            if coding is not None:
                content = compress(coding, content)
            send(proto, scope.method, 200, stamp(record, 200, answer), content)
            return None
        if coding is None:
            answer.append(("content-length", str(size)))
        if scope.method != "GET":
            proto.response_empty(200, stamp(record, 200, answer))
            return None
        return self._stream(proto, record, 200, answer, seed, 0, size, coding)

    @staticmethod
    def _ranged(wanted: str, if_range: str | None, size: int, seed: int) -> tuple[int, int] | None:
        """The range to send, or None for the whole body (another tag, or a Range ignored)."""
        if if_range is not None and not if_range_holds(if_range, etag(size, seed, None)):
            return None
        return byte_range(wanted, size)  # 416 when unsatisfiable

    def _size(self, raw: str) -> int:
        if not _SIZE.fullmatch(raw) or int(raw) > self._max_bytes:
            raise BadRequest(
                f"n={raw[:40]!r} is not a whole number of bytes from 0 to {self._max_bytes} "
                "(--max-download-bytes)"
            )
        return int(raw)

    def _part(
        self,
        proto: HTTPProtocol,
        record: RequestRecord,
        seed: int,
        size: int,
        ranged: tuple[int, int],
    ) -> Coroutine[Any, Any, None] | None:
        """206: the bytes from ``first`` to ``last`` of ``size``, in identity."""
        first, last = ranged
        answer = [
            _OCTETS,
            NO_STORE,
            VARY,
            ("etag", etag(size, seed, None)),
            _RANGES,
            ("content-range", f"bytes {first}-{last}/{size}"),
            ("content-length", str(last - first + 1)),
        ]
        if last - first + 1 <= WHOLE_BYTES:
            content = b"".join(pieces(seed, first, last + 1))
            proto.response_bytes(206, stamp(record, 206, answer), content)
            return None
        return self._stream(proto, record, 206, answer, seed, first, last + 1, None)

    async def _stream(
        self,
        proto: HTTPProtocol,
        record: RequestRecord,
        status: int,
        answer: list[tuple[str, str]],
        seed: int,
        start: int,
        end: int,
        coding: str | None,
    ) -> None:
        """Write the bytes from ``start`` to ``end`` through a pipe, encoded in ``coding``."""
        pipe = Pipe(proto, status, stamp(record, status, answer))
        stream = None if coding is None else encoder(coding)
        try:
            for piece in pieces(seed, start, end):
                await pipe.write(piece if stream is None else stream.encode(piece))
            if stream is not None:
                await pipe.write(stream.finish())
        except (ClientGone, ProtocolClosed, ProtocolError):
            record.status = CLIENT_GONE
            record.detail = "the client left the download, or stopped reading it"
        finally:
            pipe.close()
        record.duration_ms = (time.perf_counter() - record.started) * 1000.0
