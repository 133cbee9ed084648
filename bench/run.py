"""The benchmark suite: wrk against a local echod over every workload in bench/workloads.

    python -m bench.run [--duration 10] [--connections 100,400] [--workloads a,b]
                        [--workers 1] [--no-tls] [--memory-requests 1000000]

For each workload and connection count it reports requests/s, p50, p99, errors, the
CPU time echod's processes spent per request and their peak memory (the sum of PSS).
A WebSocket workload sends small JSON messages over 100 connections to /api/raw and
reports messages/s, the p99 round trip and the CPU time per message.
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
import shutil
import statistics
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.report import print_table, write_chart
from bench.server import Server, free_port, statuses
from bench.tokens import SigningKey, claims, key_set
from bench.wrk import wrk
from bench.wsload import wsload

HERE = Path(__file__).resolve().parent
WORKLOADS = HERE / "workloads"
#: Each workload, the path it hits and the statuses it expects (others count as unexpected).
SUITE: dict[str, tuple[str, frozenset[int]]] = {
    "reference": ("/api/echo", frozenset({200})),
    "bearer": ("/api/echo", frozenset({200})),
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


def websocket(server: Server, base: str, args: argparse.Namespace) -> dict[str, float]:
    """Small JSON messages echoed over ``args.ws_connections`` WebSockets on /api/raw.

    /api/raw, where every echo must equal its message, so that wsload can check each one
    (the same route the WebSocket comparison with Go uses).
    """
    url = base.replace("http:", "ws:", 1) + "/api/raw"
    wsload(args.wsload, url, args.warmup, args.ws_connections)
    cpu_before = server.cpu_seconds()
    figures = wsload(args.wsload, url, args.duration, args.ws_connections)
    cpu = server.cpu_seconds() - cpu_before
    return {
        "connections": args.ws_connections,
        "messages": figures["messages"],
        "messages_per_second": figures["messages_per_second"],
        "p50_ms": figures["p50_ms"],
        "p99_ms": figures["p99_ms"],
        "errors": figures["errors"] + figures["mismatches"],
        "cpu_us_per_message": cpu / max(figures["messages"], 1) * 1e6,
    }


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


def bearer_token(directory: Path) -> Path:
    """Write a key set and an ES256 token of its key into ``directory``; return the key set.

    The token, valid for a day, is handed to wrk's bearer workload in ECHOD_BENCH_TOKEN.
    """
    key = SigningKey.generate("ES256", kid="bench")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "jwks.json").write_bytes(key_set(key))
    os.environ["ECHOD_BENCH_TOKEN"] = key.sign(claims("bench", 86400))
    return directory / "jwks.json"


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
    parser.add_argument(
        "--wsload",
        type=Path,
        default=HERE.parent / "build" / "reference" / "wsload",
        help="the WebSocket load generator (make bench builds it)",
    )
    parser.add_argument("--ws-connections", type=int, default=100)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (Debian package wrk)")
    workloads = [name for name in args.workloads.split(",") if name]
    if unknown := set(workloads) - set(SUITE):
        raise SystemExit(f"unknown workloads: {', '.join(sorted(unknown))}")
    connections = [int(n) for n in args.connections.split(",")]

    port, tls_port = free_port(), free_port()
    flags = ["--tls-port", "0" if args.no_tls else str(tls_port), "--workers", str(args.workers)]
    if "bearer" in workloads:  # a key set, and a token of its key for the workload
        flags += ["--jwt-jwks", str(bearer_token(HERE.parent / "build" / "bench-jwt"))]
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
        sockets = websocket(server, base, args) if args.ws_connections else None
        if sockets:
            print(f"  {'websocket':>15} c={args.ws_connections:<4} "
                  f"{sockets['messages_per_second']:9.0f} msg/s", flush=True)  # fmt: skip
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
        "websocket": sockets,
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
