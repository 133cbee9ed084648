"""Mutual TLS against a live echod: a client certificate from the CA in, anyone else out."""

from __future__ import annotations

import contextlib
import signal
import socket
import ssl
import subprocess
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trustme

from tests.support.processes import ECHOD, START_TIMEOUT
from tests.support.users import AUTH
from tests.support.waiting import eventually

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.processes import Echod


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """The CA that signs the server's and the clients' certificates."""
    return trustme.CA()


def context(ca: trustme.CA, client: trustme.LeafCert | None) -> ssl.SSLContext:
    """A client context that trusts ``ca`` and presents ``client``'s certificate, if any."""
    made = ssl.create_default_context()
    ca.configure_trust(made)
    if client is not None:
        client.configure_cert(made)
    return made


def wait_for_tls(echod: Echod, ssl_context: ssl.SSLContext) -> None:
    """Wait until HTTPS answers /health to a client with a certificate."""

    def answers() -> bool:
        assert echod.process is not None
        if echod.process.poll() is not None:
            pytest.fail(f"echod exited with {echod.process.returncode}: {echod.stderr()}")
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(echod.tls_url + "/health", verify=ssl_context).status_code == 200
        return False

    eventually(
        answers, timeout=START_TIMEOUT, failure="HTTPS did not answer a client with a certificate"
    )


@pytest.fixture
def mutual(make_echod: Any, ca: trustme.CA, tmp_path: Path) -> Any:
    """echod whose HTTPS needs a client certificate from the test CA; plain HTTP off."""
    server = ca.issue_cert("localhost", "127.0.0.1")
    cert, key, authority = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    server.private_key_pem.write_to_path(key)
    cert.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    ca.cert_pem.write_to_path(authority)
    echod = make_echod(
        "--tls-cert", str(cert), "--tls-key", str(key), "--tls-client-ca", str(authority),
        "--port", "0",
        tls=True, start=False,
    )  # fmt: skip
    echod.start(wait=False)
    wait_for_tls(echod, context(ca, ca.issue_cert("probe@echod.test")))
    echod.wait_for_lines("echod ready")
    return echod


class TestMutualTls:
    def test_a_certificate_from_the_ca_gets_in(self, mutual: Echod, ca: trustme.CA) -> None:
        """With a client certificate and credentials: the echo, over h2 as well."""
        client = ca.issue_cert("alice@example.test")
        for http2 in (False, True):
            with httpx.Client(verify=context(ca, client), auth=AUTH, http2=http2) as session:
                response = session.post(mutual.tls_url + "/api/echo", content=b'{"m": 1}')
            assert response.status_code == 200
            assert response.content == b'{"m":1,"echoed":true}\n'

    def test_basic_auth_still_applies(self, mutual: Echod, ca: trustme.CA) -> None:
        """A certificate is not credentials: 401 without them."""
        verified = context(ca, ca.issue_cert("alice@example.test"))
        response = httpx.post(mutual.tls_url + "/api/echo", content=b"{}", verify=verified)
        assert response.status_code == 401

    def test_a_client_without_a_certificate_fails_the_handshake(
        self, mutual: Echod, ca: trustme.CA
    ) -> None:
        """No certificate: no TLS session, so not even the probes answer."""
        for path in ("/api/echo", "/health"):
            with pytest.raises(httpx.TransportError):
                httpx.post(
                    mutual.tls_url + path, content=b"{}", auth=AUTH, verify=context(ca, None)
                )

    def test_a_certificate_from_another_ca_fails_the_handshake(
        self, mutual: Echod, ca: trustme.CA
    ) -> None:
        """Only the configured CA's certificates are accepted."""
        stranger = trustme.CA().issue_cert("mallory@example.test")
        made = context(ca, None)
        stranger.configure_cert(made)
        with pytest.raises(httpx.TransportError):
            httpx.get(mutual.tls_url + "/health", verify=made)

    def test_port_zero_leaves_no_plain_listener(self, mutual: Echod) -> None:
        """With --port 0 nothing listens for plain HTTP, and the log says only HTTPS serves."""
        ready = next(line for line in mutual.log_lines() if line.get("message") == "echod ready")
        assert [url.split(":")[0] for url in ready["urls"]] == ["https"], ready
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", mutual.port), timeout=2).close()

    def test_the_healthcheck_says_it_cannot_probe(self, mutual: Echod) -> None:
        """echod healthcheck with the same settings names why it cannot tell."""
        args = [arg for arg in mutual.args if arg]
        done = subprocess.run(
            [str(ECHOD), "healthcheck", *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert done.returncode == 1
        assert "client certificate" in done.stderr


def gets_in(echod: Echod, ca: trustme.CA, client: trustme.LeafCert) -> bool:
    """Whether ``client``'s certificate opens a TLS session on echod's HTTPS."""
    try:
        return httpx.get(echod.tls_url + "/health", verify=context(ca, client)).status_code == 200
    except httpx.TransportError:
        return False


class TestReload:
    def test_sighup_puts_a_new_client_ca_in_service(
        self, mutual: Echod, ca: trustme.CA, tmp_path: Path
    ) -> None:
        """The CA file rotated: the new CA's clients get in, the old CA's no longer do."""
        successor = trustme.CA()
        successor.cert_pem.write_to_path(tmp_path / "ca.pem")
        mutual.signal(signal.SIGHUP)
        line = mutual.wait_for_lines("reload")[0]
        assert line["message"] == "reloaded", line
        assert line["changed"] == ["--tls-client-ca"]
        assert gets_in(mutual, ca, successor.issue_cert("carol@example.test"))
        assert not gets_in(mutual, ca, ca.issue_cert("alice@example.test"))

    def test_a_client_ca_file_without_a_certificate_keeps_the_old_one(
        self, mutual: Echod, ca: trustme.CA, tmp_path: Path
    ) -> None:
        """A garbage CA file: reload failed, and the CA in service still lets its clients in."""
        (tmp_path / "ca.pem").write_bytes(b"not a certificate\n")
        mutual.signal(signal.SIGHUP)
        line = mutual.wait_for_lines("reload")[0]
        assert line["message"].startswith("reload failed"), line
        assert "--tls-client-ca=" in line["message"]
        assert gets_in(mutual, ca, ca.issue_cert("alice@example.test"))
        assert mutual.process is not None
        assert mutual.process.poll() is None


def test_without_a_client_ca_no_certificate_is_asked(make_echod: Any) -> None:
    """The default HTTPS listener takes clients without certificates."""
    echod = make_echod(tls=True)
    with socket.create_connection(("127.0.0.1", echod.tls_port), timeout=5) as raw:
        unverified = ssl.create_default_context()
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        with unverified.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() in {"TLSv1.2", "TLSv1.3"}
