"""What a reload reads, made for tests: htpasswd files, certificates, and what HTTPS serves."""

from __future__ import annotations

import socket
import ssl
from typing import TYPE_CHECKING

from cryptography import x509

from tests.support.users import cheap_users

if TYPE_CHECKING:
    from pathlib import Path

    import trustme

__all__ = ["htpasswd", "issue", "replace", "served_serial", "verifying"]


def htpasswd(**passwords: str) -> bytes:
    """An htpasswd file of these users, as echod passwd writes it (at the lowest cost)."""
    users = cheap_users(**passwords)
    return b"".join(user.encode() + b":" + hashed + b"\n" for user, hashed in users.items())


def replace(path: Path, content: bytes) -> None:
    """Write ``path`` in one step, as echod passwd and cert-manager do."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_bytes(content)
    fresh.replace(path)


def issue(ca: trustme.CA, cert: Path, key: Path) -> int:
    """Write a new certificate for localhost from ``ca`` and its key; return its serial."""
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    replace(key, leaf.private_key_pem.bytes())
    replace(cert, b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    return x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()).serial_number


def verifying(ca: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts ``ca`` only."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def served_serial(port: int, ca: trustme.CA) -> int:
    """The serial of the certificate that a new TLS connection to ``port`` is served."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        verifying(ca).wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if der is None:
        raise ssl.SSLError("no certificate was served")
    return x509.load_der_x509_certificate(der).serial_number
