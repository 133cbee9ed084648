"""Run the Autobahn test suite's fuzzing client against a WebSocket echo; ``make autobahn``.

The server is a shell command with a ``{port}`` placeholder (echod, or the Go reference),
started on a free loopback port and stopped at the end, whatever happens. Once it answers
/health, one handshake with credentials must get 101 on the path under test, so that a
server without a WebSocket there fails at once, with its answer named. Then wstest (the
Autobahn test suite's command, Python 2.7, in a virtualenv of its own) runs through
``scripts/wstest/driver.py``, which sends the demo user's credentials on every handshake.

The summary (``scripts/autobahn_report.py``: the pass rule, and counts per group) is
printed, and written as Markdown with ``--markdown``. The exit status is 1 when a case did
not pass or has no result, or when the run could not be made.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.contender import Contender
from bench.server import HealthError, free_port, wait_healthy
from scripts.autobahn_report import AutobahnError, Report, markdown, read_report

ROOT = Path(__file__).resolve().parents[1]
DRIVER = ROOT / "scripts" / "wstest" / "driver.py"
#: The demo user, whose password is public (README, "Quickstart").
USER, PASSWORD = "remarkablebob", "2rFtex"
#: The case ids of each selection, as wstest's spec takes them. The smoke run is every group
#: but the large messages (up to 16 MiB) and compression: about half the full run's time.
SELECTIONS = {
    "full": ["*"],
    "smoke": ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.1.1", "9.2.1", "10.*"],
}


def authorization() -> str:
    """The demo user's Authorization header (RFC 7617)."""
    return "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def spec(name: str, url: str, selection: str, outdir: Path) -> dict[str, object]:
    """The spec of wstest's fuzzing client, with the credentials that the driver sends."""
    return {
        "outdir": str(outdir),
        "servers": [{"agent": name, "url": url, "headers": {"Authorization": authorization()}}],
        "cases": SELECTIONS[selection],
        "exclude-cases": [],
        "exclude-agent-cases": {},
    }


def check_handshake(port: int, path: str) -> None:
    """One WebSocket handshake with credentials; an :class:`AutobahnError` unless it is 101."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers={
            "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(b"autobahn-check!!").decode(),
            "Authorization": authorization(),
        })  # fmt: skip
        answer = connection.getresponse()
    except OSError as error:
        raise AutobahnError(f"a WebSocket handshake on {path} failed: {error}") from error
    finally:
        connection.close()
    if answer.status != http.client.SWITCHING_PROTOCOLS:
        raise AutobahnError(
            f"a WebSocket handshake on {path} with credentials got {answer.status} "
            f"{answer.reason}, not 101 Switching Protocols: no WebSocket is served there"
        )


def run_wstest(python: Path, spec_file: Path, log: Path, timeout: float) -> None:
    """Run wstest's fuzzing client through the driver, its output into ``log``."""
    with log.open("wb") as out:
        try:
            subprocess.run(
                [python, DRIVER, "--mode", "fuzzingclient", "--spec", spec_file],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                timeout=timeout, check=True,
            )  # fmt: skip
        except subprocess.TimeoutExpired as error:
            raise AutobahnError(f"wstest did not finish within {timeout:g} s; see {log}") from error
        except subprocess.CalledProcessError as error:
            raise AutobahnError(f"wstest exited with {error.returncode}; see {log}") from error


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--name", required=True, help="the server's name in the report")
    parser.add_argument("--command", required=True, help="shell command of the server, {port}")
    parser.add_argument("--wstest-python", type=Path, required=True, help="wstest's Python 2.7")
    parser.add_argument("--cases", choices=sorted(SELECTIONS), default="full")
    parser.add_argument("--path", default="/api/raw", help="the WebSocket path under test")
    parser.add_argument("--outdir", type=Path, default=ROOT / "build" / "autobahn")
    parser.add_argument("--markdown", type=Path, help="also write the summary to this file")
    parser.add_argument("--timeout", type=float, default=600, help="seconds wstest may take")
    args = parser.parse_args(argv)
    if "{port}" not in args.command:
        parser.error("--command needs a {port} placeholder")
    if not args.wstest_python.is_file():
        parser.error(f"--wstest-python {args.wstest_python}: no such file (make autobahn makes it)")
    return args


def run(args: argparse.Namespace, server: Contender) -> Report:
    """Start the server, check its handshake, run wstest and read its report."""
    folder = args.outdir / args.name
    reports = folder / "reports" / "servers"
    folder.mkdir(parents=True, exist_ok=True)
    for old in (reports / "index.json", reports / "plan.json"):
        old.unlink(missing_ok=True)
    spec_file = folder / "spec.json"
    url = f"ws://127.0.0.1:{server.port}{args.path}"
    spec_file.write_text(json.dumps(spec(args.name, url, args.cases, reports), indent=2))
    server.start()
    try:
        wait_healthy(server.base, server.running())
    except HealthError as error:
        raise AutobahnError(f"{args.name}: {error}") from error
    check_handshake(server.port, args.path)
    print(f"autobahn: the {args.cases} run against {url}; wstest's output is in {folder}")
    started = time.monotonic()
    run_wstest(args.wstest_python, spec_file, folder / "wstest.log", args.timeout)
    seconds = time.monotonic() - started
    if server.process is None or server.process.poll() is not None:
        raise AutobahnError(f"{args.name} exited during the run")
    return read_report(
        reports,
        server=args.name,
        command=args.command,
        path=args.path,
        selection=args.cases,
        seconds=seconds,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the cases; print the summary; return 1 when a case did not pass."""
    args = parse(argv)
    server = Contender(args.name, args.command, free_port())
    # SIGTERM (make's timeout, a CI job's end) unwinds like Ctrl-C, so the server is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        report = run(args, server)
    except AutobahnError as error:
        server.stop()  # first, so that its output is complete
        print(f"autobahn: {error}", file=sys.stderr)
        print(f"--- the end of {args.name}'s output:\n{server.tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("autobahn: interrupted; the server is stopped", file=sys.stderr)
        return 130
    finally:
        server.stop()
        server.log.close()
    summary = markdown(report)
    print(summary, end="")
    print(f"autobahn: the full report is {args.outdir / args.name}/reports/servers/index.html")
    if args.markdown is not None:
        args.markdown.write_text(summary)
        print(f"autobahn: the summary is in {args.markdown}")
    return 1 if report.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
