"""Server parts that need no process: listeners, ports in use, certificates."""

from __future__ import annotations

import datetime as dt
import errno
import ipaddress
import socket
import ssl
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

from echod.instance.certs import DEV_CERT_DAYS, self_signed
from echod.instance.listener import Listener
from echod.instance.server import _busy_ports

if TYPE_CHECKING:
    from pathlib import Path


class TestListener:
    @pytest.mark.parametrize(
        ("host", "url"),
        [("0.0.0.0", "http://0.0.0.0:3000"), ("::", "http://[::]:3000")],
        ids=["ipv4", "ipv6"],
    )
    def test_url_brackets_ipv6_hosts(self, host: str, url: str) -> None:
        """Logged URLs are valid for both address families."""
        assert Listener("http", host, 3000).url == url


class TestSelfSignedCertificate:
    def test_certificate_is_for_localhost_and_loads(self, tmp_path: Path) -> None:
        """The development certificate covers localhost, 127.0.0.1 and ::1 and loads."""
        cert_pem, key_pem = self_signed()
        parsed = x509.load_pem_x509_certificate(cert_pem)
        names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert names.get_values_for_type(x509.DNSName) == ["localhost"]
        assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
        cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
        cert.write_bytes(cert_pem)
        key.write_bytes(key_pem)
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)

    @pytest.mark.parametrize(
        "name",
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        ids=["localhost", "127.0.0.1"],
    )
    def test_a_strict_verifier_accepts_it_when_pinned(self, name: x509.GeneralName) -> None:
        """cryptography's RFC 5280 verifier, with the certificate as the only trust anchor."""
        cert = x509.load_pem_x509_certificate(self_signed()[0])
        verifier = (
            PolicyBuilder()
            .store(Store([cert]))
            .time(dt.datetime.now(dt.UTC))
            .build_server_verifier(name)  # type: ignore[arg-type]
        )
        assert verifier.verify(cert, []) == [cert]

    def test_it_is_valid_for_a_year_from_now(self) -> None:
        """At least 30 and at most 366 days, as Mozilla's guidelines allow: 365."""
        cert = x509.load_pem_x509_certificate(self_signed()[0])
        lifetime = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
        assert dt.timedelta(days=364) < lifetime <= dt.timedelta(days=DEV_CERT_DAYS)
        assert 30 <= DEV_CERT_DAYS <= 366


class TestBusyPorts:
    def test_a_port_granian_holds_is_reported_busy(self) -> None:
        """granian binds with SO_REUSEPORT, which a second bind could share: echod refuses."""
        with socket.socket() as held:
            held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            held.bind(("127.0.0.1", 0))
            held.listen()
            listener = Listener("http", "127.0.0.1", held.getsockname()[1])
            [(busy, error)] = _busy_ports([listener])
        assert busy == listener
        assert error.errno == errno.EADDRINUSE

    def test_a_free_port_is_not_reported(self) -> None:
        """Nothing listens: nothing to report."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        assert _busy_ports([Listener("http", "127.0.0.1", port)]) == []
