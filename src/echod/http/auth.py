"""Auth: HTTP basic credentials (RFC 7617) checked against the users' bcrypt hashes.

bcrypt is slow on purpose, so it is not paid per request. Credentials that bcrypt
accepted are remembered, and so are refused ones, in bounded tables: repeating either
costs a table lookup. Only new credentials are hashed: on one thread per process, with
a bounded queue, and once for all the requests that carry them at the same time. So a
flood of wrong passwords cannot starve users whose credentials are known.

With a key set (``--jwt-jwks``), bearer tokens are taken too (RFC 6750), verified by
:class:`echod.http.bearer.Tokens`, which remembers its outcomes the same way. A token's
signature is checked on the event loop: it takes a fraction of a millisecond, where
bcrypt takes tens.
"""

from __future__ import annotations

import asyncio
import binascii
from base64 import b64decode
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import bcrypt

from echod.http.problems import ServiceUnavailable, Unauthorized

if TYPE_CHECKING:
    from collections.abc import Coroutine, Mapping

    from echod.http.bearer import Tokens
    from echod.telemetry.records import RequestRecord

__all__ = [
    "BASIC",
    "BCRYPT_MAX_PASSWORD",
    "BEARER",
    "MAX_PENDING_HASHES",
    "MAX_REFUSED_REMEMBERED",
    "MAX_VERIFIED_REMEMBERED",
    "Authenticator",
    "Credentials",
    "parse_basic_auth",
]

#: Credentials that may wait for bcrypt in one process; more are answered 503.
MAX_PENDING_HASHES = 64
#: Verified credentials remembered per process, so that bcrypt runs once for each.
MAX_VERIFIED_REMEMBERED = 1024
#: Refused credentials remembered per process, so that repeating them is cheap.
MAX_REFUSED_REMEMBERED = 10_000

#: bcrypt reads at most 72 bytes of a password; htpasswd and most libraries drop the rest.
BCRYPT_MAX_PASSWORD = 72
_WRONG = "wrong user name or password"
#: The schemes a request's record names once its credentials are verified.
BASIC, BEARER = "basic", "bearer"
_BEARER = "bearer"


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and password as the client sent them, and the header that carried them."""

    user: str
    password: bytes
    header: str

    def __repr__(self) -> str:
        """Show the user, never the password."""
        return f"Credentials(user={self.user!r})"


def parse_basic_auth(header: str | None) -> Credentials:
    """Parse an ``Authorization`` header of the Basic scheme (RFC 7617).

    Raises:
        Unauthorized: the header is missing, of another scheme, not base64, has no
            colon, or names a user that is not UTF-8.
    """
    if not header:
        raise Unauthorized("credentials are required (HTTP basic auth)")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        raise Unauthorized("only the Basic authentication scheme is supported")
    token = token.strip(" ")
    if not token:
        raise Unauthorized("the Basic scheme carries no credentials")
    try:
        decoded = b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("the Basic credentials are not valid base64") from None
    user, colon, password = decoded.partition(b":")
    if not colon:
        raise Unauthorized("the Basic credentials have no colon between user and password")
    try:
        return Credentials(user.decode(), password, header)
    except UnicodeDecodeError:
        raise Unauthorized("the user name is not valid UTF-8") from None


def _is_bearer(header: str) -> bool:
    """Whether ``header`` is of the Bearer scheme, in any case, without copying its token."""
    scheme = len(_BEARER)
    return header[:scheme].lower() == _BEARER and (len(header) == scheme or header[scheme] == " ")


class Authenticator:
    """Checks credentials; knows when bcrypt is needed and keeps its work bounded."""

    def __init__(
        self,
        users: Mapping[str, bytes],
        *,
        max_pending: int = MAX_PENDING_HASHES,
        max_verified: int = MAX_VERIFIED_REMEMBERED,
        max_refused: int = MAX_REFUSED_REMEMBERED,
        tokens: Tokens | None = None,
    ) -> None:
        """Check against ``users`` (name -> bcrypt hash); the limits bound the work.

        With ``tokens``, bearer tokens are taken too.
        """
        self._users = dict(users)
        self._tokens = tokens
        self._max_pending = max_pending
        self._max_verified = max_verified
        self._max_refused = max_refused
        # Keyed by the whole Authorization header. dict hashes str keys with SipHash under
        # a per-process random key, so a lookup's timing only tells whether this exact
        # header was seen before (which the answer tells anyway): no secret is compared
        # byte by byte.
        self._verified: dict[str, str] = {}
        self._refused: dict[str, None] = {}
        self._hashing: dict[str, asyncio.Future[bool]] = {}
        self._executor: ThreadPoolExecutor | None = None
        # Unknown users are hashed too, against this, so timing does not reveal them.
        self._unknown_user_hash = next(iter(self._users.values()))
        # How many times the users changed: an outcome of other users is not remembered.
        self._generation = 0

    def authenticate(
        self, header: str | None, record: RequestRecord
    ) -> Coroutine[Any, Any, None] | None:
        """Verify the ``Authorization`` value ``header``; write its user and scheme into ``record``.

        Credentials that bcrypt accepted before, and bearer tokens, are done at once
        (None). Other Basic credentials give a coroutine that hashes them
        (:meth:`_verify`), which the caller awaits. So a request whose credentials are
        known never waits.

        Raises:
            Unauthorized: the header is missing or unusable, or these credentials were
                refused before. A token's refusal is an
                :class:`echod.http.problems.InvalidToken`.
        """
        if header:
            user = self._verified.get(header)
            if user is not None:
                record.user = user  # the scheme is Basic, the record's default
                return None
            if header in self._refused:
                raise Unauthorized(_WRONG)
            if self._tokens is not None:
                if _is_bearer(header):
                    record.user = self._tokens.verify(header).user
                    record.scheme = BEARER
                    return None
                if header.partition(" ")[0].lower() != "basic":
                    raise Unauthorized(
                        "only the Basic and Bearer authentication schemes are supported",
                        Unauthorized.BOTH,
                    )
        elif self._tokens is not None:
            raise Unauthorized(
                "credentials are required (HTTP basic auth or a bearer token)", Unauthorized.BOTH
            )
        return self._verify(parse_basic_auth(header), record)

    async def _verify(self, credentials: Credentials, record: RequestRecord) -> None:
        """Hash ``credentials`` with bcrypt, off the event loop, and remember the outcome.

        Requests that carry the same credentials while they are being hashed wait for
        that one hash.

        Raises:
            Unauthorized: the user is unknown or the password is wrong.
            ServiceUnavailable: too many credentials are already waiting for bcrypt.
        """
        hashing = self._hashing.get(credentials.header)
        if hashing is None:
            if len(self._hashing) >= self._max_pending:
                raise ServiceUnavailable(
                    "too many new credentials are being checked; retry shortly"
                )
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="echod-bcrypt"
                )
            loop = asyncio.get_running_loop()
            hashing = loop.run_in_executor(self._executor, self._bcrypt, credentials)
            hashing.add_done_callback(partial(self._hashed, credentials, self._generation))
            self._hashing[credentials.header] = hashing
        # Shielded: a request that goes away must not cancel the hash others wait for.
        if not await asyncio.shield(hashing):
            raise Unauthorized(_WRONG)
        record.user = credentials.user  # the scheme is Basic, the record's default

    def use(self, users: Mapping[str, bytes]) -> None:
        """Check against ``users`` from now on (a reload put them in service).

        Nothing remembered from before is kept, so a removed user or a changed password
        is refused at once; a hash under way when they change is not remembered either.
        """
        self._users = dict(users)
        self._unknown_user_hash = next(iter(self._users.values()))
        self._verified = {}
        self._refused = {}
        self._generation += 1

    def use_key_set(self, jwks: bytes) -> None:
        """Verify bearer tokens with the key set ``jwks`` (checked already) from now on.

        Without bearer tokens (no ``--jwt-jwks`` at start), there is nothing to change.
        """
        if self._tokens is not None:
            from echod.http.keyset import KeySet  # noqa: PLC0415 - loaded with the tokens already

            self._tokens.use(KeySet.parse(jwks))

    def close(self) -> None:
        """Stop the hashing thread once it has hashed what it has in hand."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    def _hashed(
        self, credentials: Credentials, generation: int, hashing: asyncio.Future[bool]
    ) -> None:
        del self._hashing[credentials.header]
        if hashing.cancelled() or hashing.exception() is not None or generation != self._generation:
            return
        remembered: dict[str, Any] = self._verified if hashing.result() else self._refused
        limit = self._max_verified if hashing.result() else self._max_refused
        if len(remembered) >= limit:
            del remembered[next(iter(remembered))]  # the oldest
        remembered[credentials.header] = credentials.user if hashing.result() else None

    def _bcrypt(self, credentials: Credentials) -> bool:
        hashed = self._users.get(credentials.user)
        password = credentials.password[:BCRYPT_MAX_PASSWORD]
        try:
            matched = bcrypt.checkpw(password, hashed or self._unknown_user_hash)
        except ValueError:  # a hash bcrypt cannot read (a damaged users file): a refusal
            return False
        return matched and hashed is not None
