"""Profile echod's worker under the reference load with py-spy: a flame graph and a summary.

    python -m bench.profile [--seconds 10] [--native]

Writes build/profile.svg (open it in a browser) and prints the share of samples in
granian and the event loop, in echod's own code, and in the rest.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import time
from pathlib import Path

from bench.run import WORKLOADS
from bench.server import Server, free_port

ROOT = Path(__file__).resolve().parents[1]
PY_SPY = Path(sys.executable).with_name("py-spy")


def worker_pid(server: Server) -> int:
    """The worker process: the one no other process of the instance is parent of."""
    pids = set(server.pids())
    parents = set()
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat").read_text()
        parents.add(int(stat[stat.rindex(")") + 2 :].split()[1]))
    leaves = sorted(pids - parents)
    if len(leaves) != 1:
        raise SystemExit(f"expected one worker, found {leaves}")
    return leaves[0]


def summarize(raw: Path) -> None:
    """Print where the samples of the worker's event-loop thread went."""
    shares: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if "run_forever" not in stack:
            continue  # other threads: bcrypt, granian's own
        if "EchoApp.__rsgi__" not in stack:
            where = "granian and the event loop, outside echod's handler"
        elif stack.rsplit(";", 1)[-1].startswith(("EchoApp.__rsgi__", "EchoApp._body")):
            where = "echod's handler, in a line that calls granian (body, response) or its own"
        else:
            where = "echod's functions (auth, echo, ids, log line, metrics)"
        shares[where] += int(samples)
    total = sum(shares.values())
    for name, count in shares.most_common():
        print(f"{count / max(total, 1) * 100:5.1f}%  {name}")


def main() -> int:
    """Load echod, sample its worker, write the flame graph."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--native", action="store_true", help="sample native frames too (slower)")
    args = parser.parse_args()
    out = ROOT / "build"
    out.mkdir(exist_ok=True)
    port = free_port()
    server = Server(["--tls-port", "0"])
    try:
        server.start(port)
        worker = worker_pid(server)
        script = str(WORKLOADS / "reference.lua")
        url = f"http://127.0.0.1:{port}/api/echo"
        load = subprocess.Popen(
            ["wrk", "-t2", "-c100", f"-d{args.seconds + 4}s", "-s", script, url],
            stdout=subprocess.DEVNULL,
        )
        time.sleep(2)
        mode = ["--native"] if args.native else ["--nonblocking"]
        for form, path in (("flamegraph", out / "profile.svg"), ("raw", out / "profile.txt")):
            seconds = str(args.seconds // 2)
            subprocess.run(
                [str(PY_SPY), "record", "-p", str(worker), "-d", seconds, "-r", "250",
                 "-f", form, "-o", str(path), *mode],
                check=True, capture_output=True,
            )  # fmt: skip
        load.wait()
    finally:
        server.stop()
    summarize(out / "profile.txt")
    print(f"flame graph: {out / 'profile.svg'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
