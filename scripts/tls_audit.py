"""Audit echod's HTTPS listener with testssl.sh; ``make tls-audit`` runs this.

echod starts on free loopback ports with its development certificate, testssl.sh
checks the listener (about a minute), and every finding above INFO is printed. The
findings below are known and explained in docs/operations.md; any other one fails the audit.
The full report is in build/tls-audit/testssl.json.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

from bench.server import free_port
from scripts.stack import ECHOD, stop

REPORT = Path(__file__).resolve().parents[1] / "build" / "tls-audit" / "testssl.json"
#: Findings that are expected, with the reason (docs/operations.md, "Certificates and TLS").
KNOWN = {
    "cert_chain_of_trust": "the development certificate is self-signed",
    "cert_revocation": "a development certificate names no CRL or OCSP responder",
    "cipher_order": "rustls lets the client choose among suites that are all strong",
    "HSTS": "echod does not pin browsers to HTTPS; a proxy in front may",
    "DNS_CAArecord": "localhost has no CAA record",
    "engine_problem": "testssl.sh's own OpenSSL has no GOST engine",
}
_QUIET = {"OK", "INFO"}


def _wait_tls(port: int, timeout: float = 30.0) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
                context.wrap_socket(raw, server_hostname="localhost").close()
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main() -> int:
    """Run the audit; return 0 when testssl.sh found nothing beyond the known findings."""
    testssl = shutil.which("testssl") or shutil.which("testssl.sh")
    if testssl is None:
        sys.stderr.write("tls-audit: testssl.sh is missing: install the Debian package\n")
        return 1
    port, tls_port = free_port(), free_port()
    echod = subprocess.Popen(
        [ECHOD, "--host", "127.0.0.1", "--port", str(port), "--tls-port", str(tls_port)],
        stdout=subprocess.DEVNULL,
    )
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.unlink(missing_ok=True)
    try:
        _wait_tls(tls_port)
        subprocess.run(
            [testssl, "--quiet", "--color", "0", "--warnings", "off",
             "--jsonfile", str(REPORT), f"localhost:{tls_port}"],
            stdout=subprocess.DEVNULL,
            timeout=600,
            check=False,
        )  # fmt: skip
    finally:
        stop(echod)
    findings = [f for f in json.loads(REPORT.read_text()) if f["severity"] not in _QUIET]
    unexpected = 0
    for finding in findings:
        reason = KNOWN.get(finding["id"])
        unexpected += reason is None
        note = f"known: {reason}" if reason else "UNEXPECTED"
        print(f"{finding['severity']:8} {finding['id']:22} {finding['finding'][:60]}  ({note})")  # noqa: T201
    print(f"tls-audit: {len(findings)} findings above INFO, {unexpected} unexpected; {REPORT}")  # noqa: T201
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
