"""The benchmark suite: wrk against a local echod over every workload in bench/workloads.

    python bench/run.py [--duration 10] [--connections 100,400] [--workloads a,b]
                        [--workers 1] [--no-tls] [--memory-requests 1000000]

For each workload and connection count it reports requests/s, p50, p99, errors, the
CPU time echod's processes spent per request and their peak memory (the sum of PSS).
It also times how soon /health answers after a start, runs the reference workload over
HTTPS, and measures memory growth over a long run. Results are written to
bench/results/<date>.json with a chart beside it (<date>.png).

Shared machines are noisy: compare results from the same run, and prefer ratios.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from report import print_table, write_chart

HERE = Path(__file__).resolve().parent
WORKLOADS = HERE / "workloads"
ECHOD = Path(sys.executable).with_name("echod")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: Each workload, the path it hits and the statuses it expects (others count as unexpected).
SUITE: dict[str, tuple[str, frozenset[int]]] = {
    "reference": ("/api/echo", frozenset({200})),
    "json_1k": ("/api/echo", frozenset({200})),
    "json_64k": ("/api/echo", frozenset({200})),
    "put": ("/api/echo", frozenset({200})),
    "wrong_password": ("/api/echo", frozenset({401})),
    "mix": ("/api/echo", frozenset({200, 400, 401})),
    "health": ("/health", frozenset({200})),
}


@dataclass
class Result:
    """One wrk run against echod."""

    workload: str
    connections: int
    scheme: str
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    unexpected: int
    cpu_us_per_request: float
    peak_pss_mib: float


@dataclass
class Server:
    """An echod process in its own session, with its CPU and memory readable."""

    args: list[str]
    log: Any = field(default_factory=tempfile.TemporaryFile)
    process: subprocess.Popen[bytes] | None = None
    url: str = ""

    def start(self, port: int) -> float:
        """Start echod and return the seconds until /health answered."""
        self.url = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        self.process = subprocess.Popen(
            [str(ECHOD), "--host", "127.0.0.1", "--port", str(port), *self.args],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = started + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1):  # noqa: S310
                    return time.monotonic() - started
            except OSError:
                time.sleep(0.01)
        raise SystemExit("echod did not answer /health within 30 s")

    def pids(self) -> list[int]:
        """Every process of the echod instance (its session)."""
        if self.process is None:
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat[stat.rindex(")") + 2 :].split()[3]) == self.process.pid:
                    found.append(int(entry.name))
        return found

    def cpu_seconds(self) -> float:
        """User and system CPU seconds of every live process of the instance."""
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / CLOCK_TICKS

    def pss_bytes(self) -> int:
        """The instance's memory: its processes' PSS, summed."""
        total = 0
        for pid in self.pids():
            try:
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            if match := re.search(r"^Pss:\s+(\d+) kB", rollup, re.MULTILINE):
                total += int(match.group(1)) * 1024
        return total

    def stop(self) -> None:
        """Stop with SIGTERM and wait."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self.log.close()


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def to_ms(value: str) -> float:
    """Convert a latency as wrk prints it (us, ms or s) to milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if match is None:
        raise ValueError(f"not a wrk latency: {value!r}")
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]


def wrk(url: str, script: Path, seconds: int, connections: int) -> dict[str, float]:
    """Run wrk and return its figures."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s",
               "-s", str(script), url]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    figures: dict[str, float] = {}
    for key, pattern in {
        "rps": r"Requests/sec:\s+([\d.]+)",
        "requests": r"(\d+) requests in",
        "non_2xx": r"Non-2xx or 3xx responses: (\d+)",
    }.items():
        match = re.search(pattern, out)
        figures[key] = float(match.group(1)) if match else 0.0
    for key, pattern in {"p50_ms": r"^\s+50%\s+(\S+)$", "p99_ms": r"^\s+99%\s+(\S+)$"}.items():
        match = re.search(pattern, out, re.MULTILINE)
        if match is None:
            raise SystemExit(f"wrk printed no {key}:\n{out}")
        figures[key] = to_ms(match.group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    figures["socket_errors"] = sum(int(n) for n in errors.groups()) if errors else 0
    return figures


def statuses(base: str) -> dict[str, float]:
    """Requests answered so far, by status, as echod's /metrics counts them."""
    counts: dict[str, float] = {}
    with urllib.request.urlopen(base.replace("https:", "http:", 1) + "/metrics", timeout=5) as page:  # noqa: S310
        for line in page.read().decode().splitlines():
            if match := re.match(r'http_requests_total\{.*status="(\d+)".*\} (\S+)$', line):
                counts[match.group(1)] = counts.get(match.group(1), 0) + float(match.group(2))
    return counts


def measure(
    server: Server, base: str, workload: str, connections: int, args: argparse.Namespace
) -> Result:
    """Warm up, then run one workload while sampling echod's memory."""
    path, expected = SUITE[workload]
    script = WORKLOADS / f"{workload}.lua"
    wrk(base + path, script, args.warmup, connections)
    peak = server.pss_bytes()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.25):
            peak = max(peak, server.pss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    counted = statuses(server.url)
    cpu_before = server.cpu_seconds()
    sampler.start()
    figures = wrk(base + path, script, args.duration, connections)
    done.set()
    sampler.join()
    cpu = server.cpu_seconds() - cpu_before
    if path == "/health":  # probes are not counted by echod: rely on wrk
        unexpected = int(figures["non_2xx"])
    else:
        after = statuses(server.url)
        unexpected = int(
            sum(n - counted.get(s, 0) for s, n in after.items() if int(s) not in expected)
        )
    return Result(
        workload=workload,
        connections=connections,
        scheme=base.split(":", 1)[0],
        requests=int(figures["requests"]),
        rps=figures["rps"],
        p50_ms=figures["p50_ms"],
        p99_ms=figures["p99_ms"],
        socket_errors=int(figures["socket_errors"]),
        unexpected=unexpected,
        cpu_us_per_request=cpu / max(figures["requests"], 1) * 1e6,
        peak_pss_mib=peak / 2**20,
    )


def memory_growth(server: Server, base: str, requests: int) -> dict[str, float]:
    """Run the reference workload for about ``requests`` requests; report memory growth."""
    script = WORKLOADS / "reference.lua"
    wrk(base + "/api/echo", script, 5, 100)  # warm-up
    before = server.pss_bytes()
    sent = 0
    while sent < requests:
        sent += int(wrk(base + "/api/echo", script, 10, 100)["requests"])
    after = server.pss_bytes()
    return {"requests": sent, "pss_before_mib": before / 2**20, "pss_after_mib": after / 2**20,
            "growth_mib": (after - before) / 2**20}  # fmt: skip


def startup_seconds(runs: int, workers: int) -> list[float]:
    """Seconds from starting echod to its first /health answer, ``runs`` times."""
    times = []
    for _ in range(runs):
        server = Server(["--tls-port", "0", "--workers", str(workers)])
        try:
            times.append(server.start(free_port()))
        finally:
            server.stop()
    return times


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    version = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False, cwd=HERE)  # fmt: skip
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": (version.stdout or version.stderr).split("[")[0].strip(),
        "commit": commit.stdout.strip(),
    }


def main() -> int:
    """Run the suite and write its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per run")
    parser.add_argument("--connections", default="100,400")
    parser.add_argument("--workloads", default=",".join(SUITE))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-tls", action="store_true", help="skip the HTTPS run")
    parser.add_argument("--memory-requests", type=int, default=1_000_000)
    parser.add_argument("--startup-runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (Debian package wrk)")
    workloads = [name for name in args.workloads.split(",") if name]
    if unknown := set(workloads) - set(SUITE):
        raise SystemExit(f"unknown workloads: {', '.join(sorted(unknown))}")
    connections = [int(n) for n in args.connections.split(",")]

    port, tls_port = free_port(), free_port()
    flags = ["--tls-port", "0" if args.no_tls else str(tls_port), "--workers", str(args.workers)]
    server = Server(flags)
    results: list[Result] = []
    try:
        server.start(port)
        base = f"http://127.0.0.1:{port}"
        for workload in workloads:
            for count in connections:
                results.append(measure(server, base, workload, count, args))
                print(f"  {workload:>15} c={count:<4} {results[-1].rps:9.0f} req/s", flush=True)
        if not args.no_tls:
            for count in connections:
                results.append(
                    measure(server, f"https://127.0.0.1:{tls_port}", "reference", count, args)
                )
                print(
                    f"  {'reference TLS':>15} c={count:<4} {results[-1].rps:9.0f} req/s", flush=True
                )
        memory = memory_growth(server, base, args.memory_requests) if args.memory_requests else None
    finally:
        server.stop()
    startups = startup_seconds(args.startup_runs, args.workers)

    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "workers": args.workers,
            "log_level": "info",
            "wrk_threads": 2,
        },
        "results": [asdict(result) for result in results],
        "memory": memory,
        "startup_seconds": {"runs": startups, "median": statistics.median(startups)},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    write_chart(report, stem.with_suffix(".png"))
    print_table(report)
    print(f"\nwrote {stem.with_suffix('.json')} and {stem.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
