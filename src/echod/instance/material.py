"""Material: the files that a reload reads again, as they were read, and what they hold.

They are the htpasswd file of the users (``--users-file``), the certificate chain and
its private key (``--tls-cert``, ``--tls-key``), the CAs that client certificates
chain to (``--tls-client-ca``), and the key set of bearer tokens (``--jwt-jwks``). echod
reads them at start and on every reload, and
checks all of them before any is put in service (:mod:`echod.instance.checker`, in a
process of its own): one bad file, and nothing changes. What no setting names is made
or found once, at start, and kept: the bundled demo users and the development
certificate.

A :class:`Reading` is what one file held when it was read, with where it was (device,
inode and modification time, through symlinks). Two snapshots of the files differ when
any of that differs, which is how a changed file is noticed. Nothing here needs the
cryptography library: a serving process never loads it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from echod.settings.config import flag

if TYPE_CHECKING:
    from pathlib import Path

    from echod.settings.config import Settings

__all__ = ["SETTINGS", "Material", "Reading", "Snapshot", "Summary", "read", "sources"]

#: The setting that names the file of each field of :class:`Material`.
SETTINGS = {
    "users": "users_file",
    "tls_cert": "tls_cert",
    "tls_key": "tls_key",
    "tls_client_ca": "tls_client_ca",
    "jwks": "jwt_jwks",
}


@dataclass(frozen=True, slots=True)
class Material:
    """What a reload puts in service, as checked bytes: users, certificate, key, client CA, JWKS."""

    users: bytes
    tls_cert: bytes | None = None
    tls_key: bytes | None = None
    tls_client_ca: bytes | None = None
    jwks: bytes | None = None

    def changes(self, before: Material) -> list[str]:
        """The flags of the files whose content differs from ``before``."""
        now, then = dataclasses.asdict(self), dataclasses.asdict(before)
        return [flag(SETTINGS[field]) for field in now if now[field] != then[field]]


@dataclass(frozen=True, slots=True)
class Reading:
    """One file as it was read: where it was, and its bytes or why they could not be read."""

    path: Path
    #: Device, inode and modification time (ns) of the file, through symlinks.
    identity: tuple[int, int, int] | None
    content: bytes | None
    error: str | None


#: Each file that the settings name, by the field of :class:`Material` that it fills.
Snapshot = dict[str, Reading]


def sources(settings: Settings) -> dict[str, Path]:
    """The files that ``settings`` name, by the field of :class:`Material` that each fills."""
    named = {"users": settings.users_file, "jwks": settings.jwt_jwks}
    if settings.tls_enabled:
        named |= {
            "tls_cert": settings.tls_cert,
            "tls_key": settings.tls_key,
            "tls_client_ca": settings.tls_client_ca,
        }
    return {field: path for field, path in named.items() if path is not None}


def read(settings: Settings) -> Snapshot:
    """Read every file that ``settings`` name, as it is now."""
    snapshot = {}
    for field, path in sources(settings).items():
        try:
            with path.open("rb") as file:
                stat = os.fstat(file.fileno())
                content = file.read()
        except OSError as error:
            snapshot[field] = Reading(path, None, None, error.strerror or str(error))
        else:
            snapshot[field] = Reading(
                path, (stat.st_dev, stat.st_ino, stat.st_mtime_ns), content, None
            )
    return snapshot


@dataclass(frozen=True, slots=True)
class Summary:
    """What the log and the metrics say of some material."""

    users: int
    #: The serial number of the certificate, in hexadecimal as openssl prints it.
    serial: str | None
    #: When the certificate expires, in Unix time.
    not_after: float | None
    #: The keys of the JWKS, or None without one.
    jwt_keys: int | None = None

    def fields(self) -> dict[str, object]:
        """The summary as fields of a log line."""
        fields: dict[str, object] = {"users": self.users}
        if self.serial is not None and self.not_after is not None:
            not_after = dt.datetime.fromtimestamp(self.not_after, dt.UTC)
            fields |= {"certSerial": self.serial, "certNotAfter": not_after.isoformat()}
        if self.jwt_keys is not None:
            fields["jwtKeys"] = self.jwt_keys
        return fields
