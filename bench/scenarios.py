"""Scenario throughput: /api/inspect with key= against the plain /api/inspect, per store.

For each store (the runtime directory, then a redis-server started here on a free
loopback port) and each number of workers, echod is started afresh and wrk runs the
``inspect`` workload (no key: the state is not touched) and the ``scenario`` workload
(``key=bench&fail=0``: one attempt counted and logged per request), each after a
warm-up. The table gives requests per second, p50 and p99, echod's CPU per request, and
the answers that were not 200 (echod's own count). Results go to
``bench/results/scenarios-<date>.json``.

    python -m bench.scenarios [--duration 10] [--connections 100] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.run import machine
from bench.server import Server, free_port, statuses
from bench.wrk import wrk

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
WORKLOADS = {
    "inspect": "/api/inspect",
    "scenario": "/api/inspect?key=bench&fail=0",
}


def _redis(directory: str) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server in memory only, on a free loopback port; its process and URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is needed (Debian package redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--dir", directory],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done = subprocess.run(
            ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True, check=False
        )
        if done.stdout.strip() == "PONG":
            return process, f"redis://127.0.0.1:{port}/0"
        time.sleep(0.1)
    process.kill()
    raise SystemExit("redis-server did not answer within 10 s")


def _run(
    store: str, workers: int, state: list[str], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Both workloads against one fresh echod; a row per workload."""
    server = Server(["--tls-port", "0", "--workers", str(workers), *state])
    port = free_port()
    rows = []
    try:
        server.start(port)
        base = f"http://127.0.0.1:{port}"
        for workload, path in WORKLOADS.items():
            script = HERE / "workloads" / f"{workload}.lua"
            wrk(base + path, script, args.warmup, args.connections)
            counted = statuses(server.url)
            cpu_before = server.cpu_seconds()
            figures = wrk(base + path, script, args.duration, args.connections)
            cpu = server.cpu_seconds() - cpu_before
            after = statuses(server.url)
            other = sum(n - counted.get(s, 0) for s, n in after.items() if s != "200")
            rows.append(
                {
                    "store": store,
                    "workers": workers,
                    "workload": workload,
                    "connections": args.connections,
                    "requests": int(figures["requests"]),
                    "rps": figures["rps"],
                    "p50_ms": figures["p50_ms"],
                    "p99_ms": figures["p99_ms"],
                    "cpu_us_per_request": cpu / max(figures["requests"], 1) * 1e6,
                    "not_200": int(other),
                    "socket_errors": int(figures["socket_errors"]),
                }
            )
            row = rows[-1]
            print(
                f"  {store:>17} w={workers} {workload:>8} {row['rps']:9.0f} req/s "
                f"p99 {row['p99_ms']:7.2f} ms  {row['cpu_us_per_request']:6.0f} us/req  "
                f"not 200: {row['not_200']}",
                flush=True,
            )
    finally:
        server.stop()
    return rows


def main() -> int:
    """Measure both workloads on both stores; print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per run")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--workers", default="1,2", help="numbers of workers, comma-separated")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (Debian package wrk)")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as directory:
        redis, url = _redis(directory)
        try:
            for workers in (int(n) for n in args.workers.split(",")):
                rows += _run("runtime directory", workers, [], args)
                subprocess.run(["redis-cli", "-u", url, "flushall"], check=True,
                               capture_output=True)  # fmt: skip
                rows += _run("redis", workers, ["--state", url], args)
        finally:
            redis.terminate()
            redis.wait(10)
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {"duration_s": args.duration, "warmup_s": args.warmup, "wrk_threads": 2},
        "results": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / dt.datetime.now(dt.UTC).strftime("scenarios-%Y-%m-%d.json")
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
