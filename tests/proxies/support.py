"""Real proxies in front of real echod processes: nginx, HAProxy and Caddy, run as the tests' own.

Each proxy runs the configuration that ``deploy/proxies/`` ships (or one of its own
defaults, in ``tests/proxies/defaults/``) with as few changes as running it here takes,
each one named in :data:`SHIPPED` and checked to apply exactly: the ports and the
addresses of the two echod behind it, the certificate's files, the site's name
(``localhost``, which the audit asks for), and the directives that make a proxy a test's
process (its files in a scratch directory, in the foreground, no admin listener).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import trustme
import yaml

from tests.support.processes import ECHOD, Echod, free_port
from tests.support.tools import nginx_conf, require_tool

__all__ = [
    "DEFAULTS",
    "DEPLOY",
    "KINDS",
    "SHIPPED",
    "Certificate",
    "Origins",
    "Proxy",
    "audit",
    "expected_matrix",
]

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "proxies"
DEFAULTS = Path(__file__).resolve().parent / "defaults"
KINDS = ("nginx", "haproxy", "caddy")
#: Where each proxy's shipped configuration is, and its configuration by default.
SHIPPED = {
    "nginx": DEPLOY / "nginx" / "echod.conf",
    "haproxy": DEPLOY / "haproxy" / "haproxy.cfg",
    "caddy": DEPLOY / "caddy" / "Caddyfile",
}
DEFAULT = {
    "nginx": DEFAULTS / "nginx.conf",
    "haproxy": DEFAULTS / "haproxy.cfg",
    "caddy": DEFAULTS / "Caddyfile",
}
#: The Debian package of each proxy.
PACKAGES = {"nginx": "nginx", "haproxy": "haproxy", "caddy": "caddy"}
#: The flags the echod behind a proxy run with: a drain longer than the proxies' health
#: interval (1 s), and delays long enough to outlast their read timeout (15 s).
ORIGIN_FLAGS = ("--tls-port", "0", "--drain-delay", "3", "--max-delay", "20")
START_TIMEOUT = 15.0


@dataclass(frozen=True)
class Certificate:
    """A certificate for localhost, from a CA of the test's own, in the files proxies read."""

    cert: Path
    key: Path
    #: The certificate and its key in one file, as HAProxy reads them.
    both: Path

    @classmethod
    def make(cls, directory: Path) -> Certificate:
        """Write the files into ``directory``."""
        ca = trustme.CA()
        issued = ca.issue_cert("localhost", "127.0.0.1")
        cert, key, both = directory / "cert.pem", directory / "key.pem", directory / "both.pem"
        issued.cert_chain_pems[0].write_to_path(str(cert))
        issued.private_key_pem.write_to_path(str(key))
        both.write_bytes(cert.read_bytes() + key.read_bytes())
        return cls(cert, key, both)


class Origins:
    """The two echod behind a proxy, each logging to a file the audit may read."""

    def __init__(self, directory: Path, *extra: str, count: int = 2) -> None:
        """Prepare ``count`` echod in ``directory`` with the origin flags and ``extra``."""
        self.logs = [directory / f"echod-{index}.log" for index in range(count)]
        self.echods = [Echod(*ORIGIN_FLAGS, *extra, log=log) for log in self.logs]

    @property
    def ports(self) -> list[int]:
        """Their plain HTTP ports."""
        return [echod.port for echod in self.echods]

    @property
    def pids(self) -> list[int]:
        """Their process ids."""
        return [echod.process.pid for echod in self.echods if echod.process is not None]

    def start(self) -> Origins:
        """Start them all, and wait until each serves."""
        for echod in self.echods:
            echod.start(wait=False)
        for echod in self.echods:
            echod.wait_healthy()
            echod.wait_for_lines("echod ready")
        return self

    def close(self) -> None:
        """Stop them all."""
        for echod in self.echods:
            echod.close()


def _replace(text: str, changes: list[tuple[str, str]], where: Path) -> str:
    """``text`` with each change made; each must apply, so that no config drifts silently."""
    for old, new in changes:
        if old not in text:
            raise AssertionError(f"{where.name}: {old!r} is not there to change for the test")
        text = text.replace(old, new)
    return text


@dataclass
class Proxy:
    """One proxy, its configuration made runnable here, in front of some echod."""

    kind: str
    config: Path
    origins: list[int]
    directory: Path
    certificate: Certificate
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The proxy's base URL, as clients reach it."""
        return f"https://localhost:{self.port}"

    def render(self) -> tuple[list[str], Path]:
        """Write the configuration as it runs here; the command that runs it, and its file."""
        text = self.config.read_text()
        backends = [f"127.0.0.1:{port}" for port in self.origins]
        first, second = (backends * 2)[:2]
        made = self.directory / self.config.name
        if self.kind == "nginx":
            nginx = require_tool("nginx", "Debian package nginx")
            changes = [
                ("listen 443 ssl", f"listen 127.0.0.1:{self.port} ssl"),
                ("/etc/ssl/certs/echod.example.pem", str(self.certificate.cert)),
                ("/etc/ssl/private/echod.example.key", str(self.certificate.key)),
                ("127.0.0.1:3000", first),
                ("127.0.0.1:3001", second),
                ("echod.example", "localhost"),
            ]
            (self.directory / "site.conf").write_text(_replace(text, changes, self.config))
            made = self.directory / "nginx.conf"
            made.write_text(nginx_conf(self.directory, f"    include {self.directory}/site.conf;"))
            return [nginx, "-p", str(self.directory), "-c", str(made), "-e", "stderr"], made
        if self.kind == "haproxy":
            haproxy = require_tool("haproxy", "Debian package haproxy")
            changes = [
                ("bind :443 ", f"bind 127.0.0.1:{self.port} "),
                ("/etc/haproxy/certs/echod.example.pem", str(self.certificate.both)),
                ("127.0.0.1:3000", first),
                ("127.0.0.1:3001", second),
            ]
            made.write_text(_replace(text, changes, self.config))
            return [haproxy, "-f", str(made), "-db"], made
        caddy = require_tool("caddy", "Debian package caddy")
        # No admin listener and no redirecting listener on port 80: a test's own Caddy.
        own = "\tadmin off\n\tauto_https disable_redirects\n"
        if "\tdefault_sni echod.example" in text:
            text = text.replace("\tdefault_sni echod.example", own + "\tdefault_sni localhost")
        else:
            text = "{\n" + own + "}\n\n" + text
        changes = [
            ("echod.example:443", f"localhost:{self.port}"),
            ("/etc/caddy/echod.example.pem", str(self.certificate.cert)),
            ("/etc/caddy/echod.example.key", str(self.certificate.key)),
            ("127.0.0.1:3000 127.0.0.1:3001", " ".join(backends)),
        ]
        made.write_text(_replace(text, changes, self.config))
        return [caddy, "run", "--config", str(made), "--adapter", "caddyfile"], made

    def start(self) -> Proxy:
        """Run the proxy, and wait until it answers /health through TLS."""
        command, _ = self.render()
        self._log = (self.directory / f"{self.kind}.log").open("wb")
        environment = {
            **os.environ,
            "HOME": str(self.directory),
            "XDG_CONFIG_HOME": str(self.directory / "xdg-config"),
            "XDG_DATA_HOME": str(self.directory / "xdg-data"),
        }
        self.process = subprocess.Popen(
            command,
            cwd=self.directory,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"{self.kind} did not serve: {self.log()}")
            time.sleep(0.1)
        return self

    def _answers(self) -> bool:
        import httpx  # noqa: PLC0415

        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(self.url + "/health", verify=False, timeout=2).status_code == 200  # noqa: S501
        return False

    def log(self) -> str:
        """What the proxy wrote so far."""
        path = self.directory / f"{self.kind}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop the proxy (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None


def audit(proxy: Proxy, *args: str, timeout: float = 150) -> tuple[int, dict[str, Any], str]:
    """Run ``echod audit`` through ``proxy`` with ``args``: its status, JSON report and stderr."""
    done = subprocess.run(
        [str(ECHOD), "audit", "--through", proxy.url, "--insecure", "--format", "json", *args],
        capture_output=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    report: dict[str, Any] = json.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, report, done.stderr.decode(errors="replace")


def listening(port: int) -> bool:
    """Whether something accepts connections on ``port`` of the loopback address."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def expected_matrix() -> dict[str, dict[str, dict[str, str | list[str]]]]:
    """The expected results: by proxy, configuration (shipped, default) and check."""
    loaded: dict[str, dict[str, dict[str, str | list[str]]]] = yaml.safe_load(
        (Path(__file__).resolve().parent / "expected.yaml").read_text()
    )
    return loaded
