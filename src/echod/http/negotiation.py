"""Negotiation: which content coding an answer is sent in (RFC 9110 section 12.5.3).

``Accept-Encoding`` names the codings a client takes, with q-values. echod sends the
coding the client prefers, and among equals its own order, :data:`PREFERENCE`. Without
``Accept-Encoding``, or for an answer under :data:`MIN_SIZE` bytes, the answer stays
unencoded (identity), unless identity is refused (``identity;q=0``, or ``*;q=0``
without ``identity``): then a coding the client takes is used all the same, and without
one the answer is 406. ``encoding=`` (or ``X-Echod-Encoding``) forces a coding, or
``identity``, whatever the size and whatever ``Accept-Encoding`` says, so that a test
can see what a client does with an answer it did not ask for.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

from echod.http.codings import CODINGS, compress
from echod.http.problems import BadRequest, NotAcceptable

if TYPE_CHECKING:
    from echod.http.controls import Controls

__all__ = [
    "IDENTITY",
    "MIN_SIZE",
    "PREFERENCE",
    "VARY",
    "choose",
    "encode_whole",
    "forced",
    "refuses_identity",
]

#: Answers shorter than this many bytes are not worth encoding.
MIN_SIZE = 256
#: The coding that is no coding.
IDENTITY = "identity"
#: echod's order among codings the client likes as much: the fastest for its ratio first.
PREFERENCE = ("zstd", "br", "gzip", "deflate")
#: On every answer whose coding follows ``Accept-Encoding``.
VARY = ("vary", "accept-encoding")
# Browsers and clients send a few values over and over: those are parsed once.
_REMEMBERED_LENGTH = 128
_QVALUE = re.compile(r"(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)")


def forced(controls: Controls) -> str | None:
    """The coding ``encoding=`` forces, or None.

    Raises:
        BadRequest: it names no coding echod writes.
    """
    given = controls.text("encoding")
    if given is None:
        return None
    value, source = given
    if value not in (*CODINGS, IDENTITY):
        names = ", ".join((*PREFERENCE, IDENTITY))
        raise BadRequest(f"{source}={value[:40]!r} is not a coding echod writes ({names})")
    return value


def _qualities(accept: str) -> tuple[dict[str, float], float | None]:
    """What :func:`_parse` makes of ``accept``; short values, the usual ones, are remembered."""
    return _remembered(accept) if len(accept) <= _REMEMBERED_LENGTH else _parse(accept)


def _parse(accept: str) -> tuple[dict[str, float], float | None]:
    """Each coding's quality in ``accept`` (those of a quality above 0), and identity's.

    Identity's is None when the field does not mention it, directly or through ``*``.
    Items whose q-value is malformed are left out, as if absent.
    """
    listed: dict[str, float] = {}
    for item in accept.split(","):
        name, *parameters = (part.strip() for part in item.split(";"))
        quality = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                value = value.strip()
                quality = float(value) if _QVALUE.fullmatch(value) else -1.0
        if name and quality >= 0:
            listed.setdefault(name.lower(), quality)
    wildcard = listed.get("*")
    qualities = {}
    for coding in PREFERENCE:
        quality = listed.get(coding, wildcard if wildcard is not None else 0.0)
        if quality > 0:
            qualities[coding] = quality
    return qualities, listed.get(IDENTITY, wildcard if wildcard == 0 else None)


_remembered = lru_cache(maxsize=64)(_parse)


def choose(accept: str | None, size: int | None, force: str | None = None) -> str | None:
    """The coding of an answer of ``size`` bytes (None: not known yet), or None: identity.

    Raises:
        NotAcceptable: identity is refused and no coding echod writes is taken (406).
    """
    if force is not None:
        return None if force == IDENTITY else force
    if accept is None:
        return None
    qualities, identity = _qualities(accept)
    best = max(qualities, key=lambda coding: qualities[coding], default=None)
    refused = identity == 0
    worth = refused or size is None or size >= MIN_SIZE
    if best is not None and worth and (identity is None or qualities[best] >= identity):
        return best
    if not refused:
        return None
    raise NotAcceptable(
        f"Accept-Encoding {accept[:80]!r} refuses identity and takes none of "
        f"{', '.join(PREFERENCE)}"
    )


def refuses_identity(accept: str | None) -> bool:
    """Whether ``accept`` refuses an unencoded answer (``identity;q=0``, or ``*;q=0``)."""
    return accept is not None and _qualities(accept)[1] == 0


def encode_whole(
    accept: str | None, body: bytes, force: str | None = None
) -> tuple[str | None, bytes]:
    """The coding chosen for ``body`` (None: identity), and ``body`` in it.

    Raises:
        NotAcceptable: as :func:`choose`.
    """
    coding = choose(accept, len(body), force)
    return coding, body if coding is None else compress(coding, body)
