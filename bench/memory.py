"""Memory: idle and after load, echod's process tree beside the Go reference, and what costs what.

    python -m bench.memory [--requests 100000] [--go PATH] [--echod PATH]

Each server is started alone, answers 200 echoes, and rests a second: its idle memory is
the proportional set size (PSS) of its whole process tree, shared pages divided among the
processes that share them, and RSS beside it. Then wrk sends the reference load until at
least ``--requests`` echoes are answered, and the PSS is read again. Last comes a burst
of large bodies (100 clients at once, 5 echoes of 900 KB each), and the PSS 3 s later:
what a burst leaves behind. Where another
process shares the interpreter's pages (another Python on the machine), PSS comes out
lower than for a process alone: RSS is the bound.

The breakdown runs a lone interpreter that imports one thing and reads its own PSS, the
floor under every figure: the interpreter alone, msgspec, granian, and what a serving
process of echod imports.
"""

from __future__ import annotations

import argparse
import base64
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.contender import Contender
from bench.processes import process_tree
from bench.server import free_port, wait_healthy
from bench.wrk import wrk

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "bench" / "workloads" / "reference.lua"
ECHOD = Path(sys.executable).with_name("echod")
GO = ROOT / "build" / "reference" / "go-echod"
MIB = 2**20
# The burst: 100 clients at once, each sending 5 bodies of 900 KB; then a rest of 3 s.
BURST_CLIENTS = 100
BURST_BODIES = 5
BURST_BYTES = 900_000
BURST_REST = 3.0
_AUTH = "Basic " + base64.b64encode(b"remarkablebob:2rFtex").decode()
# Modules imported one at a time by a lone interpreter: what each costs on its own.
IMPORTS = {
    "nothing": "",
    "msgspec": "import msgspec",
    "granian": "import granian.server.embed",
    "echod's serving process": "import echod.instance.serving",
}
_OWN_PSS = (
    "import re\n"
    "text = open('/proc/self/smaps_rollup').read()\n"
    "print(re.search(r'^Pss:\\s+(\\d+)', text, re.M).group(1))\n"
)


@dataclass(frozen=True)
class Figure:
    """One server's memory: its processes, and their PSS and RSS, idle and after load."""

    name: str
    processes: int
    idle_pss: int
    idle_rss: int
    loaded_pss: int
    requests: int
    burst_pss: int


def _memory(root: int) -> tuple[int, int, int]:
    """Processes, PSS and RSS of the tree under ``root``, in bytes."""
    pids = process_tree(root)
    pss = rss = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                pss += int(line.split()[1]) * 1024
            elif line.startswith("Rss:"):
                rss += int(line.split()[1]) * 1024
    return len(pids), pss, rss


def _echo(base: str, count: int) -> None:
    for _ in range(count):
        request = urllib.request.Request(  # noqa: S310 - loopback, the server under test
            base + "/api/echo", data=b'{"foo": "bar"}', headers={"Authorization": _AUTH}
        )
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
            answer.read()


def _burst(base: str) -> None:
    """Large bodies at once: BURST_CLIENTS clients, each sending BURST_BODIES of them."""

    def client() -> None:
        body = b'{"k": "' + b"x" * BURST_BYTES + b'"}'
        for _ in range(BURST_BODIES):
            request = urllib.request.Request(  # noqa: S310 - loopback, the server under test
                base + "/api/echo", data=body, headers={"Authorization": _AUTH}
            )
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                answer.read()

    with ThreadPoolExecutor(BURST_CLIENTS) as pool:
        for done in [pool.submit(client) for _ in range(BURST_CLIENTS)]:
            done.result()


def measure(name: str, command: str, requests: int) -> Figure:
    """Start ``command`` (a ``{port}`` in it), and read its memory idle, then after load."""
    contender = Contender(name, command, free_port())
    contender.start()
    try:
        process = contender.running()
        wait_healthy(contender.base, process)
        _echo(contender.base, 200)
        time.sleep(1.0)
        processes, idle_pss, idle_rss = _memory(process.pid)
        answered = 0
        while answered < requests:
            figures = wrk(contender.base + "/api/echo", REFERENCE, 5, 100)
            answered += int(figures["requests"])
        time.sleep(1.0)
        _, loaded_pss, _ = _memory(process.pid)
        _burst(contender.base)
        time.sleep(BURST_REST)
        _, burst_pss, _ = _memory(process.pid)
        return Figure(name, processes, idle_pss, idle_rss, loaded_pss, answered, burst_pss)
    finally:
        contender.stop()


def imported(statement: str) -> int:
    """The PSS of a lone interpreter that ran ``statement``, in bytes."""
    done = subprocess.run(
        [sys.executable, "-c", f"{statement}\n{_OWN_PSS}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(done.stdout.strip()) * 1024


def main() -> int:
    """Print the table of memory figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000, help="echoes under load")
    parser.add_argument("--go", type=Path, default=GO, help="the Go reference's binary")
    parser.add_argument("--echod", type=Path, default=ECHOD, help="the echod to measure")
    args = parser.parse_args()
    echod = f"{args.echod} --host 127.0.0.1 --port {{port}} --log-level info"
    servers = {
        "echod, default (HTTP and HTTPS)": f"{echod} --tls-port {free_port()}",
        "echod, HTTP only": f"{echod} --tls-port 0",
        "echod --workers 2 (HTTP and HTTPS)": f"{echod} --tls-port {free_port()} --workers 2",
        "Go reference": f"{args.go} -addr 127.0.0.1:{{port}}",
    }
    print(
        "| instance | processes | idle PSS | idle RSS | PSS after load | requests "
        "| PSS 3 s after a burst of large bodies |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, command in servers.items():
        if name == "Go reference" and not args.go.exists():
            print(f"| {name} | not built: make build/reference/go-echod | | | | | |")
            continue
        figure = measure(name, command, args.requests)
        print(
            f"| {figure.name} | {figure.processes} | {figure.idle_pss / MIB:.1f} MiB "
            f"| {figure.idle_rss / MIB:.1f} MiB | {figure.loaded_pss / MIB:.1f} MiB "
            f"| {figure.requests:,} | {figure.burst_pss / MIB:.1f} MiB |"
        )
    print()
    print("| a lone interpreter that imports | PSS |")
    print("|---|---|")
    for name, statement in IMPORTS.items():
        print(f"| {name} | {imported(statement) / MIB:.1f} MiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
