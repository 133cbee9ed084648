"""Material: the files that a reload reads again, read and checked together as one.

They are the htpasswd file of the users (``--users-file``), the certificate chain and
its private key (``--tls-cert``, ``--tls-key``), the CAs that client certificates
chain to (``--tls-client-ca``), and the key set of bearer tokens (``--jwt-jwks``,
checked by :mod:`echod.http.keyset`, imported only then). echod reads them at start and
on every reload, and checks all of them before any is put in service: one bad file, and
nothing changes. What no setting names is made or found once, at start, and kept: the
bundled demo users and the development certificate.

A :class:`Reading` is what one file held when it was read, with where it was (device,
inode and modification time, through symlinks). Two snapshots of the files differ when
any of that differs, which is how a changed file is noticed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from echod.instance.certs import self_signed
from echod.instance.users import demo_users_file, parse_users
from echod.settings.config import ConfigError, flag

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping
    from pathlib import Path

    from echod.settings.config import Settings

__all__ = ["Material", "Reading", "Snapshot", "Summary", "build", "read", "sources", "summary"]

#: The setting that names the file of each field of :class:`Material`.
SETTINGS = {
    "users": "users_file",
    "tls_cert": "tls_cert",
    "tls_key": "tls_key",
    "tls_client_ca": "tls_client_ca",
    "jwks": "jwt_jwks",
}
# The smallest RSA key that granian's TLS library (rustls, with ring) signs with.
_MIN_RSA_BITS = 2048
# The ECDSA curves it signs with; P-521 is refused when a worker starts.
_CURVES = (ec.SECP256R1, ec.SECP384R1)


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


def build(settings: Settings, snapshot: Snapshot, kept: Material | None) -> Material:
    """Check what ``snapshot`` holds; return it as material, with what ``kept`` has for the rest.

    ``kept`` is the material in service, or None at start, when the demo users and the
    development certificate are found or made instead.

    Raises:
        ConfigError: a file cannot be read or is not what its setting needs; the message
            names the setting and the file.
    """
    users = _content(snapshot, "users")
    if users is None:
        users = demo_users_file().read_bytes() if kept is None else kept.users
    _count_users(users, snapshot.get("users"))
    cert = key = None
    if settings.tls_enabled:
        cert, key = _tls_pair(snapshot, kept)
        try:
            _check_pair(cert, key)
        except ValueError as error:
            where = " with ".join(
                f"{flag(SETTINGS[field])}={str(snapshot[field].path)!r}"
                for field in ("tls_cert", "tls_key")
                if field in snapshot
            )
            raise ConfigError(f"{where or 'the certificate'}: cannot be used: {error}") from None
    client_ca = _content(snapshot, "tls_client_ca")
    if client_ca is not None:
        try:
            x509.load_pem_x509_certificates(client_ca)
        except ValueError:
            path = snapshot["tls_client_ca"].path
            raise ConfigError(
                f"{flag(SETTINGS['tls_client_ca'])}={str(path)!r}: no PEM certificate in it"
            ) from None
    jwks = _content(snapshot, "jwks")
    if jwks is not None:
        from echod.http.keyset import KeySet  # noqa: PLC0415 - the JOSE library, only when used

        try:
            KeySet.parse(jwks)
        except ValueError as error:
            path = snapshot["jwks"].path
            raise ConfigError(f"{flag(SETTINGS['jwks'])}={str(path)!r}: {error}") from None
    return Material(users=users, tls_cert=cert, tls_key=key, tls_client_ca=client_ca, jwks=jwks)


@dataclass(frozen=True, slots=True)
class Summary:
    """What the log and the metrics say of some material."""

    users: int
    #: The serial number of the certificate, in hexadecimal as openssl prints it.
    serial: str | None
    not_after: dt.datetime | None
    #: The keys of the JWKS, or None without one.
    jwt_keys: int | None = None

    def fields(self) -> dict[str, object]:
        """The summary as fields of a log line."""
        fields: dict[str, object] = {"users": self.users}
        if self.serial is not None and self.not_after is not None:
            fields |= {"certSerial": self.serial, "certNotAfter": self.not_after.isoformat()}
        if self.jwt_keys is not None:
            fields["jwtKeys"] = self.jwt_keys
        return fields


def summary(material: Material) -> Summary:
    """How many users and keys ``material`` has, and the serial and end of its certificate."""
    users = _count_users(material.users, None)
    keys = None if material.jwks is None else len(json.loads(material.jwks)["keys"])
    if material.tls_cert is None:
        return Summary(users, None, None, keys)
    leaf = x509.load_pem_x509_certificates(material.tls_cert)[0]
    serial = f"{leaf.serial_number:X}"
    return Summary(
        users, serial.zfill(len(serial) + len(serial) % 2), leaf.not_valid_after_utc, keys
    )


def _content(snapshot: Mapping[str, Reading], field: str) -> bytes | None:
    """The bytes of ``field``'s file, or None when no setting names one.

    Raises:
        ConfigError: the file could not be read.
    """
    reading = snapshot.get(field)
    if reading is None:
        return None
    if reading.content is None:
        raise ConfigError(
            f"{flag(SETTINGS[field])}={str(reading.path)!r}: cannot be read: {reading.error}"
        )
    return reading.content


def _tls_pair(snapshot: Mapping[str, Reading], kept: Material | None) -> tuple[bytes, bytes]:
    """The certificate and key that the settings name, or else the development ones."""
    cert, key = _content(snapshot, "tls_cert"), _content(snapshot, "tls_key")
    if cert is not None and key is not None:
        return cert, key
    if kept is not None and kept.tls_cert is not None and kept.tls_key is not None:
        return kept.tls_cert, kept.tls_key
    return self_signed()


def _count_users(users: bytes, reading: Reading | None) -> int:
    source = "the demo users" if reading is None else f"users file {reading.path}"
    try:
        text = users.decode()
    except UnicodeDecodeError as error:
        raise ConfigError(f"{source}: cannot be read: {error}") from None
    return len(parse_users(text, source))


def _check_pair(cert_pem: bytes, key_pem: bytes) -> None:
    """Check that the key is the certificate's, and of a kind that granian's TLS can use.

    Raises:
        ValueError: what is wrong.
    """
    try:
        leaf = x509.load_pem_x509_certificates(cert_pem)[0]
    except ValueError:
        raise ValueError("no PEM certificate in the certificate file") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as error:  # TypeError: it is encrypted
        raise ValueError(f"the private key cannot be loaded: {error}") from None
    if isinstance(key, rsa.RSAPrivateKey):
        usable = key.key_size >= _MIN_RSA_BITS
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        usable = isinstance(key.curve, _CURVES)
    else:
        usable = isinstance(key, ed25519.Ed25519PrivateKey)
    if not usable:
        raise ValueError(
            "granian's TLS cannot sign with this key: use RSA of 2048 bits or more, "
            "ECDSA on P-256 or P-384, or Ed25519"
        )
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(der, spki) != leaf.public_key().public_bytes(der, spki):
        raise ValueError("the private key is not the certificate's")
