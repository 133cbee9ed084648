"""Audit: ``echod audit --through URL``, a conformance run of the proxy in front of echod.

echod is both the client and the origin: the audit sends requests through the proxy at
URL to the echod behind it, and compares what it sent with what arrived, through
``/api/inspect``, request ids and, when given, echod's log. Fifteen checks
(:data:`echod.audit.checks.CHECKS`), and two more that signal echod under load with
``--include reload``; each has a name, a result (pass, warn, fail or skip) and its
evidence. The command exits 0 when no check fails, 1 when one does, and 2 when it cannot
audit (a bad option, or no echod answers through the proxy).

Nothing of this is imported when echod serves: :mod:`echod.cli` imports it for the
``audit`` subcommand only, and the checks import httpx (with h2) and websockets, which
serving never needs, when they run.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from echod.audit.auditor import Audit, Options
from echod.audit.checks import CHECKS, RELOAD_CHECKS, Entry
from echod.audit.report import FORMATS, Check, Report, render
from echod.audit.wire import Target

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["EXIT_FAILED", "EXIT_PASSED", "EXIT_UNUSABLE", "main", "run"]

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_UNUSABLE = 2
#: The client libraries the checks import when they run (the ``audit`` extra).
_CLIENTS = ("httpx", "h2", "websockets")
#: The checks that wait long: they run beside the others.
_SLOW = frozenset({"delay-beyond-timeout"})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="echod audit",
        description="Check what the proxy at URL does to requests on their way to the echod "
        "behind it: fifteen checks, each with its evidence. Exits 1 when a check fails.",
    )
    add = parser.add_argument
    add(
        "--through",
        required=True,
        metavar="URL",
        help="the proxy's base URL, such as https://echod.example",
    )
    add(
        "--user",
        default=Options.user,
        metavar="USER:PASSWORD",
        help="echod's credentials (default: a demo user)",
    )
    add("--insecure", action="store_true", help="do not verify the proxy's certificate")
    add(
        "--format",
        choices=FORMATS,
        default="table",
        help="how to print the results (default: table)",
    )
    add(
        "--include",
        action="append",
        choices=["reload"],
        default=[],
        help="reload: also reload and drain echod under load (needs --origin-pid)",
    )
    add(
        "--origin-pid",
        type=int,
        action="append",
        default=[],
        metavar="PID",
        help="an echod behind the proxy, which --include reload may signal (repeatable)",
    )
    add(
        "--origin-log",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="the log (stdout) of an echod behind the proxy (repeatable)",
    )
    add(
        "--delay-ms",
        type=int,
        default=Options.delay_ms,
        metavar="MS",
        help=f"check 12's delay, longer than the proxy's read timeout ({Options.delay_ms})",
    )
    add(
        "--body-bytes",
        type=int,
        default=Options.body_bytes,
        metavar="N",
        help=f"check 10's bodies, over every limit on the way ({Options.body_bytes})",
    )
    add(
        "--header-bytes",
        type=int,
        default=Options.header_bytes,
        metavar="N",
        help=f"check 11's header, over every limit on the way ({Options.header_bytes})",
    )
    add(
        "--check",
        action="append",
        default=[],
        metavar="NAME",
        choices=[entry.name for entry in (*CHECKS, *RELOAD_CHECKS)],
        help="run this check only (repeatable)",
    )
    add(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="seconds any one step may take (10)",
    )
    return parser  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``echod audit`` with ``argv``; return its exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, or a bad option (argparse printed why)
        return EXIT_PASSED if done.code == 0 else EXIT_UNUSABLE
    missing = [name for name in _CLIENTS if importlib.util.find_spec(name) is None]
    if missing:
        print(  # noqa: T201
            f"echod audit: error: it needs {', '.join(missing)}: pip install 'echod[audit]'",
            file=sys.stderr,
        )
        return EXIT_UNUSABLE
    try:
        target = Target.parse(args.through, insecure=args.insecure, timeout=args.timeout)
    except ValueError as error:
        print(f"echod audit: error: --through: {error}", file=sys.stderr)  # noqa: T201
        return EXIT_UNUSABLE
    problems = [
        f"--{name.replace('_', '-')} must be above 0"
        for name in ("delay_ms", "body_bytes", "header_bytes", "timeout")
        if getattr(args, name) <= 0
    ]
    if ":" not in args.user:
        problems.append("--user must be USER:PASSWORD")
    if problems:
        print(f"echod audit: error: {'; '.join(problems)}", file=sys.stderr)  # noqa: T201
        return EXIT_UNUSABLE
    options = Options(
        user=args.user,
        body_bytes=args.body_bytes,
        delay_ms=args.delay_ms,
        header_bytes=args.header_bytes,
        origin_logs=args.origin_log,
        origin_pids=args.origin_pid,
        only=set(args.check),
        reload="reload" in args.include,
    )
    audit = Audit(target, options)
    unreachable = audit.reaches()
    if unreachable is not None:
        print(f"echod audit: cannot audit: {unreachable}", file=sys.stderr)  # noqa: T201
        return EXIT_UNUSABLE
    report = run(audit)
    sys.stdout.write(render(report, args.format))
    return EXIT_FAILED if report.failed else EXIT_PASSED


def run(audit: Audit) -> Report:
    """Run the checks ``audit.options`` asks for; the slow ones beside the others.

    The checks of ``--include reload`` run last, alone: a drain ends what echod holds.
    """
    options = audit.options
    chosen = [*CHECKS, *(RELOAD_CHECKS if options.reload else ())]
    if options.only:
        chosen = [entry for entry in chosen if entry.name in options.only]
    runs = [(entry, Check(entry.number, entry.name, entry.title)) for entry in chosen]
    signalling = [(entry, check) for entry, check in runs if entry in RELOAD_CHECKS]
    beside = [(entry, check) for entry, check in runs if entry.name in _SLOW]
    threads = [
        threading.Thread(target=_run_one, args=(audit, entry, check), daemon=True)
        for entry, check in beside
    ]
    for thread in threads:
        thread.start()
    for entry, check in runs:
        if (entry, check) not in beside and (entry, check) not in signalling:
            _run_one(audit, entry, check)
    for thread in threads:
        thread.join()
    for entry, check in signalling:
        _run_one(audit, entry, check)
    return Report(audit.target.url, [check for _, check in runs], sorted(audit.instances - {""}))


def _run_one(audit: Audit, entry: Entry, check: Check) -> None:
    """Run one check; an error of the audit itself is a failure that says so."""
    try:
        entry.run(audit, check)
    except Exception as error:  # noqa: BLE001 - one check's error must not stop the others
        check.judge("fail", f"the check itself failed: {type(error).__name__}: {error}")
