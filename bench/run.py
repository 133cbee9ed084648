"""Run wrk against a local echod and print throughput and latency.

    python bench/run.py [--duration 10] [--connections 100] [-- extra echod flags]

Starts echod on a free loopback port (HTTPS off), warms it up, runs wrk with the
reference workload and prints requests/s, p50, p99 and errors. Shared machines are
noisy: compare runs made in the same session, and prefer ratios to absolute numbers.
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ECHOD = Path(sys.executable).with_name("echod")


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_healthy(url: str, timeout: float = 15) -> None:
    """Wait until GET /health answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=1):  # noqa: S310 - loopback
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"echod did not answer {url}/health within {timeout}s")


def wrk(url: str, script: Path, seconds: int, connections: int) -> str:
    """Run wrk and return its report."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s",
               "-s", str(script), url]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def main() -> int:
    """Benchmark and print one line of results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of measurement")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("echod_args", nargs="*", help="extra flags for echod")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            str(ECHOD),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--tls-port",
            "0",
            *args.echod_args,
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_healthy(url)
        wrk(url + "/api/echo", HERE / "reference.lua", 2, args.connections)
        report = wrk(url + "/api/echo", HERE / "reference.lua", args.duration, args.connections)
    finally:
        server.terminate()
        server.wait(30)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", report)
    p50 = re.search(r"^\s+50%\s+(\S+)$", report, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)$", report, re.MULTILINE)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    if not (rps and p50 and p99):
        raise SystemExit(f"could not read wrk's report:\n{report}")
    print(
        f"reference workload, {args.connections} connections, {args.duration}s: "
        f"{float(rps.group(1)):.0f} req/s  p50 {p50.group(1)}  p99 {p99.group(1)}  "
        f"non-2xx {errors.group(1) if errors else 0}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
