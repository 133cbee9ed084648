"""Side by side: two servers on one machine under the same load, in alternating rounds.

    python -m bench.compare --a 'COMMAND {port}' --b 'COMMAND {port}' [--name-a A]
                            [--name-b B] [--rounds 5] [--duration 8] [--warmup 2]
                            [--connections 100] [--threads 2]
    python -m bench.compare --ws --a ... --b ...

Each command is a bash command with a ``{port}`` placeholder. Both start at once, each
in a session of its own, on a free loopback port. Once each answers ``GET /health``, it
must echo the reference request: the authenticated ``POST /api/echo`` of
``{"foo": "bar"}`` that bench/workloads/reference.lua sends. Each then gets a warm-up
run, and the measured rounds run one server after the other, the order swapped each
round, so that drift on a busy machine hits both alike. Both are stopped at the end
(SIGTERM to their sessions, SIGKILL after 10 s), whatever happened.

The load is wrk with the reference workload. With ``--ws`` it is wsload (bench/wsload.py)
on ``/api/raw``: N connections, each sending a small JSON text message and waiting for
its echo; the check is one connection whose echoes must come back unchanged.

Every run reports requests (or messages) per second, p50 and p99 latency, non-2xx answers,
socket errors (WebSocket: failed connections and wrong echoes), and the server's CPU time
per request: the user and system time of its whole process tree (bench.processes reads it).
The summary has each server's medians, and the median of the per-round A/B ratios of
throughput, p99 and CPU per request. Exit status: 0 done, 1 a server or the load failed,
2 bad arguments.
"""

from __future__ import annotations

import argparse
import base64
import json
import signal
import statistics
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.contender import CompareError, Contender
from bench.server import HealthError, free_port, wait_healthy
from bench.wrk import wrk
from bench.wsload import WsloadError, wsload

if TYPE_CHECKING:
    from collections.abc import Sequence

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "bench" / "workloads" / "reference.lua"
WSLOAD = ROOT / "build" / "reference" / "wsload"
#: The request of reference.lua, which the check sends once to each server.
REFERENCE_BODY = b'{"foo": "bar"}'
AUTHORIZATION = "Basic " + base64.b64encode(b"remarkablebob:2rFtex").decode()


@dataclass(frozen=True)
class Run:
    """One measured run of the load against one server."""

    rate: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    cpu_us: float


def http_check(contender: Contender, _: argparse.Namespace) -> None:
    """The reference request must come back as ``{"foo": "bar", "echoed": true}``."""
    request = urllib.request.Request(  # noqa: S310 - loopback
        contender.base + "/api/echo",
        data=REFERENCE_BODY,
        method="POST",
        headers={"Authorization": AUTHORIZATION, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - loopback
            body = json.loads(answer.read())
    except (OSError, ValueError) as error:
        raise CompareError(f"{contender.name}: the reference request failed: {error}") from error
    if body != {"foo": "bar", "echoed": True}:
        raise CompareError(f"{contender.name}: the reference request came back as {body!r}")


def http_load(contender: Contender, seconds: int, args: argparse.Namespace) -> tuple[Run, int]:
    """One wrk run of the reference workload; the run and its request count."""
    before = contender.cpu_seconds()
    try:
        figures = wrk(
            contender.base + "/api/echo", REFERENCE, seconds, args.connections, args.threads
        )
    except subprocess.SubprocessError as error:
        raise CompareError(f"wrk failed against {contender.name}: {error}") from error
    cpu = contender.cpu_seconds() - before
    requests = int(figures["requests"])
    run = Run(
        rate=figures["rps"],
        p50_ms=figures["p50_ms"],
        p99_ms=figures["p99_ms"],
        non_2xx=int(figures["non_2xx"]),
        socket_errors=int(figures["socket_errors"]),
        cpu_us=cpu / max(requests, 1) * 1e6,
    )
    return run, requests


def ws_url(contender: Contender) -> str:
    """The WebSocket URL of its raw echo."""
    return f"ws://127.0.0.1:{contender.port}/api/raw"


def ws_check(contender: Contender, args: argparse.Namespace) -> None:
    """One connection for a second: every echo must come back, unchanged."""
    try:
        figures = wsload(args.wsload, ws_url(contender), 1, 1)
    except (WsloadError, OSError, subprocess.SubprocessError) as error:
        raise CompareError(f"{contender.name}: {error}") from error
    if not figures["connected"]:
        raise CompareError(f"{contender.name}: no WebSocket handshake on /api/raw succeeded")
    if not figures["messages"] or figures["errors"] or figures["mismatches"]:
        raise CompareError(f"{contender.name}: the WebSocket echo check failed: {figures}")


def ws_load(contender: Contender, seconds: int, args: argparse.Namespace) -> tuple[Run, int]:
    """One wsload run; the run and its message count."""
    before = contender.cpu_seconds()
    try:
        figures = wsload(args.wsload, ws_url(contender), seconds, args.connections)
    except (WsloadError, OSError, subprocess.SubprocessError) as error:
        raise CompareError(f"wsload failed against {contender.name}: {error}") from error
    cpu = contender.cpu_seconds() - before
    messages = int(figures["messages"])
    run = Run(
        rate=figures["messages_per_second"],
        p50_ms=figures["p50_ms"],
        p99_ms=figures["p99_ms"],
        non_2xx=0,
        socket_errors=int(figures["errors"] + figures["mismatches"]),
        cpu_us=cpu / max(messages, 1) * 1e6,
    )
    return run, messages


Check = Callable[[Contender, argparse.Namespace], None]
Load = Callable[[Contender, int, argparse.Namespace], tuple[Run, int]]


def measure(
    contenders: Sequence[Contender], check: Check, load: Load, args: argparse.Namespace
) -> dict[str, list[Run]]:
    """Start, check and warm up both servers, then run the rounds; every run, by server."""
    for contender in contenders:
        contender.start()
    for contender in contenders:
        try:
            wait_healthy(contender.base, contender.running(), args.ready_timeout)
        except HealthError as error:
            raise CompareError(f"{contender.name}: {error}") from error
        check(contender, args)
        if args.warmup:
            load(contender, args.warmup, args)
    runs: dict[str, list[Run]] = {contender.name: [] for contender in contenders}
    for number in range(1, args.rounds + 1):
        for contender in contenders if number % 2 else reversed(contenders):
            run, count = load(contender, args.duration, args)
            if not count:
                raise CompareError(f"{contender.name} answered nothing in round {number}")
            runs[contender.name].append(run)
            print(
                f"round {number}  {contender.name:>8}  {describe(run, args.ws)}  "
                f"{errors(run, args.ws)}",
                flush=True,
            )
    return runs


def describe(run: Run, ws: bool) -> str:
    """A run's throughput, latency and CPU on one line."""
    unit = "msg" if ws else "req"
    return (
        f"{run.rate:10,.0f} {unit}/s  p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:6.2f} ms  "
        f"CPU {run.cpu_us:6.1f} us/{unit}"
    )


def errors(run: Run, ws: bool) -> str:
    """A run's failures: non-2xx answers and socket errors, or failed WebSocket echoes."""
    if ws:
        return f"errors {run.socket_errors}"
    return f"non-2xx {run.non_2xx}  socket errors {run.socket_errors}"


def summarize(names: tuple[str, str], runs: dict[str, list[Run]], ws: bool) -> None:
    """Print each server's medians (errors: totals) and the median A/B ratios."""
    for name in names:
        median = Run(
            rate=statistics.median(run.rate for run in runs[name]),
            p50_ms=statistics.median(run.p50_ms for run in runs[name]),
            p99_ms=statistics.median(run.p99_ms for run in runs[name]),
            non_2xx=sum(run.non_2xx for run in runs[name]),
            socket_errors=sum(run.socket_errors for run in runs[name]),
            cpu_us=statistics.median(run.cpu_us for run in runs[name]),
        )
        print(f"median   {name:>8}  {describe(median, ws)}  total {errors(median, ws)}")
    pairs = list(zip(runs[names[0]], runs[names[1]], strict=True))
    throughput = statistics.median(a.rate / b.rate for a, b in pairs)
    p99 = statistics.median(a.p99_ms / max(b.p99_ms, 1e-3) for a, b in pairs)
    cpu = statistics.median(a.cpu_us / max(b.cpu_us, 1e-3) for a, b in pairs)
    print(
        f"{names[0]} / {names[1]}, median of {len(pairs)} rounds: throughput {throughput:.2f}x  "
        f"p99 {p99:.2f}x  CPU/{'msg' if ws else 'req'} {cpu:.2f}x"
    )


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--a", required=True, help="shell command of server A, with {port}")
    parser.add_argument("--b", required=True, help="shell command of server B, with {port}")
    parser.add_argument("--name-a", default="A")
    parser.add_argument("--name-b", default="B")
    parser.add_argument("--port-a", type=int, default=0, help="default: a free port")
    parser.add_argument("--port-b", type=int, default=0, help="default: a free port")
    parser.add_argument("--ws", action="store_true", help="WebSocket echo on /api/raw (wsload)")
    parser.add_argument("--wsload", type=Path, default=WSLOAD, help="the wsload binary")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=8, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per server")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--ready-timeout", type=float, default=30, help="seconds for /health")
    args = parser.parse_args(argv)
    if "{port}" not in args.a or "{port}" not in args.b:
        parser.error("each command needs a {port} placeholder")
    if args.name_a == args.name_b:
        parser.error("--name-a and --name-b must differ")
    if min(args.rounds, args.duration, args.connections, args.threads) < 1 or args.warmup < 0:
        parser.error("--rounds, --duration, --connections and --threads must be positive")
    if args.ws and not args.wsload.is_file():
        parser.error(f"--wsload {args.wsload}: no such file (make bench-compare-ws builds it)")
    return args


def main(argv: list[str] | None = None) -> int:
    """Compare the two servers; print every run, the medians and the ratios."""
    args = parse(argv)
    contenders = (
        Contender(args.name_a, args.a, args.port_a or free_port()),
        Contender(args.name_b, args.b, args.port_b or free_port()),
    )
    for contender in contenders:
        print(f"{contender.name}: {contender.command.replace('{port}', str(contender.port))}")
    load: Load = ws_load if args.ws else http_load
    check: Check = ws_check if args.ws else http_check
    # SIGTERM (a timeout, a CI job's end) unwinds like Ctrl-C, so both servers are stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        runs = measure(contenders, check, load, args)
    except CompareError as error:
        print(f"compare: {error}", file=sys.stderr)
        for contender in contenders:
            print(f"--- the end of {contender.name}'s output:\n{contender.tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("compare: interrupted; both servers stopped", file=sys.stderr)
        return 130
    finally:
        for contender in contenders:
            contender.stop()
            contender.log.close()
    summarize((args.name_a, args.name_b), runs, args.ws)
    return 0


if __name__ == "__main__":
    sys.exit(main())
