"""Bearer: JSON Web Tokens in ``Authorization: Bearer`` (RFC 6750), read and remembered.

A token is three base64url parts joined by dots: a header and claims, each a JSON
object, and a signature (RFC 7519, RFC 7515 compact form). :func:`peek` reads the first
two without verifying anything, which needs only base64 and JSON: ``/api/inspect``
shows them for any token of that shape. :class:`Tokens` verifies a token against the
key set (:mod:`echod.http.keyset`, the one module that imports the JOSE library) and
remembers the outcome, as the bcrypt outcomes are remembered, so that a repeated token
costs a table lookup: a verified token until its ``exp``, and never past it; a refused
one for as long as its reason holds.

No reason given for a refusal quotes the token or any part of it: the reasons go into
the ``WWW-Authenticate`` challenge, the problem's detail and the log line.
"""

from __future__ import annotations

import binascii
import re
import time
from base64 import urlsafe_b64decode, urlsafe_b64encode
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

from echod.http.echo import MAX_DEPTH, too_deep
from echod.http.problems import InvalidToken

if TYPE_CHECKING:
    from echod.http.keyset import KeySet, Policy

__all__ = [
    "MAX_CLAIMS_HEADER_BYTES",
    "MAX_REFUSED_TOKENS",
    "MAX_TOKEN_BYTES",
    "MAX_VERIFIED_TOKENS",
    "NO_KEYS",
    "Identity",
    "Peeked",
    "Tokens",
    "bearer_token",
    "peek",
]

#: The longest token taken, in bytes; a longer one is refused before it is decoded.
MAX_TOKEN_BYTES = 8 * 1024
#: The longest ``X-Auth-Claims`` header ``/auth/verify`` sends; longer claims are left out.
MAX_CLAIMS_HEADER_BYTES = 4 * 1024
#: Verified tokens remembered per process, each until its ``exp``.
MAX_VERIFIED_TOKENS = 1024
#: Refused tokens remembered per process, so that repeating one is cheap.
MAX_REFUSED_TOKENS = 10_000
#: Why a token is not verified when no key set is configured (``/api/inspect``).
NO_KEYS = "no keys configured"

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
# Numbers as echo reads them: integers of any size, other numbers as decimals.
_decode = msgspec.json.Decoder(float_hook=Decimal).decode
_encode = msgspec.json.Encoder(decimal_format="number").encode
_TIME_CLAIMS = ("exp", "nbf", "iat")


@dataclass(frozen=True, slots=True)
class Peeked:
    """What a token says of itself, not verified: its header and its claims."""

    header: dict[str, Any]
    claims: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a verified token names, and what ``/auth/verify`` passes on of it."""

    #: The token's ``sub``.
    user: str
    #: The claims as compact JSON in base64url (``X-Auth-Claims``), or None when longer
    #: than :data:`MAX_CLAIMS_HEADER_BYTES`.
    claims: str | None
    #: When the token stops being remembered: its ``exp`` (Unix time).
    expires: float


def bearer_token(value: str) -> str | None:
    """The token of an ``Authorization`` value of the Bearer scheme, or None for another scheme.

    The scheme's name is case-insensitive (RFC 9110 section 11.1).
    """
    scheme, _, token = value.partition(" ")
    return token.strip(" ") if scheme.lower() == "bearer" else None


def peek(token: str) -> Peeked:
    """The header and claims of ``token``, decoded but not verified.

    Raises:
        InvalidToken: it is over :data:`MAX_TOKEN_BYTES`, is not three base64url parts,
            or its header or claims are not JSON objects of at most
            :data:`echod.http.echo.MAX_DEPTH` levels.
    """
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken(f"the token is over {MAX_TOKEN_BYTES} bytes")
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:  # noqa: PLR2004 - header, claims, signature
        raise InvalidToken("the token is not three base64url parts joined by dots")
    if not all(_BASE64URL.fullmatch(part) for part in parts):
        raise InvalidToken("the token is not base64url")
    return Peeked(_object(parts[0], "header"), _object(parts[1], "claims"))


def _object(part: str, name: str) -> dict[str, Any]:
    """One part of a token as the JSON object it must be; ``name`` says which in errors."""
    try:
        raw = urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("the token is not base64url") from None
    try:
        value = _decode(raw)
    except msgspec.DecodeError:
        raise InvalidToken(f"the token's {name} is not JSON") from None
    except RecursionError:
        raise InvalidToken(f"the token's {name} nest deeper than {MAX_DEPTH} levels") from None
    if type(value) is not dict:
        raise InvalidToken(f"the token's {name} are not a JSON object")
    if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH and too_deep(value):
        raise InvalidToken(f"the token's {name} nest deeper than {MAX_DEPTH} levels")
    return value


class Tokens:
    """Verifies bearer tokens against a key set, and remembers each outcome, bounded."""

    def __init__(
        self,
        keys: KeySet,
        policy: Policy,
        *,
        max_verified: int = MAX_VERIFIED_TOKENS,
        max_refused: int = MAX_REFUSED_TOKENS,
    ) -> None:
        """Verify with ``keys``, under ``policy``; the limits bound what is remembered."""
        self._keys = keys
        self._policy = policy
        self._max_verified = max_verified
        self._max_refused = max_refused
        # Keyed by the whole Authorization value, as the Basic credentials are: a lookup
        # hashes it with the process's random SipHash key and compares no secret byte by byte.
        self._verified: dict[str, Identity] = {}
        self._refused: dict[str, str] = {}

    def use(self, keys: KeySet) -> None:
        """Verify with ``keys`` from now on, forgetting every outcome of the old ones."""
        self._keys = keys
        self._verified = {}
        self._refused = {}

    def verify(self, authorization: str) -> Identity:
        """Who the bearer token of ``authorization`` (an Authorization value) names.

        Raises:
            InvalidToken: the token is malformed or not valid; the detail says why.
        """
        identity = self._verified.get(authorization)
        if identity is not None:
            if identity.expires > time.time():
                return identity
            del self._verified[authorization]  # it outlives no token: verify it again
        reason = self._refused.get(authorization)
        if reason is not None:
            raise InvalidToken(reason)
        token = bearer_token(authorization) or ""
        try:
            identity = self._check(token)
        except InvalidToken as refused:
            # A token that is not valid yet may be soon: only lasting refusals are kept.
            if refused.lasting:
                _remember(self._refused, authorization, refused.detail, self._max_refused)
            raise
        _remember(self._verified, authorization, identity, self._max_verified)
        return identity

    def _check(self, token: str) -> Identity:
        if not token:
            raise InvalidToken("the Bearer scheme carries no token")
        peeked = peek(token)
        claims = peeked.claims
        for name in _TIME_CLAIMS:
            value = claims.get(name)
            if value is not None and type(value) not in {int, Decimal}:
                raise InvalidToken(f"the token's {name} claim is not a number")
        self._keys.verify(token, peeked.header, self._policy)
        subject = claims.get("sub")
        if type(subject) is not str or not subject:
            raise InvalidToken("the token's sub claim is empty")
        encoded = urlsafe_b64encode(_encode(claims)).rstrip(b"=").decode()
        return Identity(
            user=subject,
            claims=encoded if len(encoded) <= MAX_CLAIMS_HEADER_BYTES else None,
            expires=float(claims["exp"]),
        )


def _remember(table: dict[str, Any], key: str, value: object, limit: int) -> None:
    """Keep ``value`` under ``key``, dropping the oldest entry when ``table`` is full."""
    if len(table) >= limit:
        del table[next(iter(table))]
    table[key] = value
