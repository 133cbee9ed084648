"""Checks: what makes the material fit to serve, made with the cryptography library.

The users file must parse, the key must be the certificate's and of a kind that
granian's TLS signs with, the client CA must hold certificates, and the key set of
bearer tokens must be one echod verifies with (:mod:`echod.http.keyset`). The development
certificate is made here when no certificate is named. Only the checker's own process
(:mod:`echod.instance.checker`) imports this module, so that the serving process never
loads cryptography, nor PyJWT unless it verifies tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from echod.http.keyset import KeySet
from echod.instance.certs import self_signed
from echod.instance.material import SETTINGS, Material, Reading, Summary
from echod.instance.users import demo_users_file, parse_users
from echod.settings.config import ConfigError, flag

if TYPE_CHECKING:
    from collections.abc import Mapping

    from echod.instance.material import Snapshot
    from echod.settings.config import Settings

__all__ = ["build", "summary"]

# The smallest RSA key that granian's TLS library (rustls, with ring) signs with.
_MIN_RSA_BITS = 2048
# The ECDSA curves it signs with; P-521 is refused when a worker starts.
_CURVES = (ec.SECP256R1, ec.SECP384R1)


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
        try:
            KeySet.parse(jwks)
        except ValueError as error:
            path = snapshot["jwks"].path
            raise ConfigError(f"{flag(SETTINGS['jwks'])}={str(path)!r}: {error}") from None
    return Material(users=users, tls_cert=cert, tls_key=key, tls_client_ca=client_ca, jwks=jwks)


def summary(material: Material) -> Summary:
    """How many users and keys ``material`` has, and the serial and end of its certificate."""
    users = _count_users(material.users, None)
    keys = None if material.jwks is None else len(KeySet.parse(material.jwks))
    if material.tls_cert is None:
        return Summary(users, None, None, keys)
    leaf = x509.load_pem_x509_certificates(material.tls_cert)[0]
    serial = f"{leaf.serial_number:X}"
    return Summary(
        users,
        serial.zfill(len(serial) + len(serial) % 2),
        leaf.not_valid_after_utc.timestamp(),
        keys,
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
