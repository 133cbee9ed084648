"""HTTPS: a real certificate, the self-signed default, HTTP/2 by ALPN, one instance's metrics."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trustme

from tests.support.material import verifying
from tests.support.tools import require_tool
from tests.support.users import AUTH

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A throwaway certificate authority."""
    return trustme.CA()


@pytest.fixture
def certified(make_echod: Any, ca: trustme.CA, tmp_path: Path) -> Any:
    """echod serving HTTPS with a certificate for localhost signed by the test CA."""
    issued = ca.issue_cert("localhost", "127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.private_key_pem.write_to_path(key)
    cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    return make_echod("--tls-cert", str(cert), "--tls-key", str(key), tls=True)


class TestRealCertificate:
    def test_echo_over_verified_https(self, certified: Any, ca: trustme.CA) -> None:
        """A client that verifies the chain gets its echo."""
        with httpx.Client(verify=verifying(ca), auth=AUTH) as client:
            response = client.post(certified.tls_url + "/api/echo", content=b'{"tls": 1}')
        assert response.status_code == 200
        assert response.content == b'{"tls":1,"echoed":true}\n'

    def test_http2_is_offered_by_alpn(self, certified: Any, ca: trustme.CA) -> None:
        """An HTTP/2 client negotiates h2 and is logged as HTTP/2."""
        with httpx.Client(verify=verifying(ca), auth=AUTH, http2=True) as client:
            response = client.post(certified.tls_url + "/api/echo", content=b"{}")
        assert response.http_version == "HTTP/2"
        assert response.status_code == 200
        assert any(line["message"] == "POST /api/echo HTTP/2" for line in certified.request_lines())

    def test_no_self_signed_warning_when_given_a_certificate(self, certified: Any) -> None:
        """The warning is only for the generated certificate."""
        assert not any("self-signed" in line["message"] for line in certified.log_lines())


class TestSelfSigned:
    def test_default_https_works_with_verification_off(self, make_echod: Any) -> None:
        """Without --tls-cert, echod makes a certificate for localhost and says so."""
        echod = make_echod(tls=True)
        response = httpx.get(echod.tls_url + "/health", verify=False)  # noqa: S501 - self-signed
        assert response.status_code == 200
        [warning] = [line for line in echod.log_lines() if "self-signed" in line["message"]]
        assert warning["level"] == "warning"

    def test_verification_fails_against_the_self_signed_certificate(self, make_echod: Any) -> None:
        """It is not trusted by default: a verifying client refuses it."""
        echod = make_echod(tls=True)
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(echod.tls_url + "/health")

    def test_curl_with_insecure_reaches_health(self, make_echod: Any) -> None:
        """The seed's curl -k example, against a free port."""
        curl = require_tool("curl", "Debian package curl")
        echod = make_echod(tls=True)
        done = subprocess.run(
            [curl, "-sk", "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
             echod.tls_url + "/health"],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        assert done.stdout == "200 2"


def test_metrics_on_either_listener_report_the_whole_instance(make_echod: Any) -> None:
    """Requests over HTTP show in the HTTPS listener's /metrics, and the other way round."""
    echod = make_echod(tls=True)
    sample = 'http_requests_total{method="POST",path="/api/echo",status="200"}'
    with httpx.Client(auth=AUTH, verify=False) as client:  # noqa: S501 - self-signed
        for _ in range(3):
            client.post(echod.url + "/api/echo", content=b"{}")
        for _ in range(2):
            client.post(echod.tls_url + "/api/echo", content=b"{}")
        for base in (echod.url, echod.tls_url):
            lines = client.get(base + "/metrics").text.splitlines()
            assert f"{sample} 5.0" in lines
