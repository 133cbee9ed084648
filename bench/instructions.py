"""Instructions per echo: the hot path counted by callgrind, in process, without a server.

Time on a shared machine moves by more than a change to the hot path does; the number
of instructions does not. This runs the whole request of ``tests/microbench`` (auth
remembered, echo, answer, metrics and the log line) ``--requests`` times under
``valgrind --tool=callgrind``, and again with none, and prints the difference per
request. The same code on the same interpreter gives the same count, run after run.

    python -m bench.instructions                 # one count, with Basic credentials
    python -m bench.instructions --auth bearer   # the same with an ES256 bearer token
    python -m bench.instructions --worker N      # what valgrind runs (not for people)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["count", "main"]

_BODY = b'{"foo": "bar"}'
_TOTAL = re.compile(rb"summary: (\d+)")


def _worker(requests: int, auth: str) -> None:
    """Build the app as a worker does, then answer ``requests`` echoes with ``auth``."""
    from tests.support.harness import (  # noqa: PLC0415
        FakeHeaders,
        FakeProto,
        FakeScope,
        new_record,
        quiet_app,
    )
    from tests.support.tokens import SigningKey, bearer, claims, key_set  # noqa: PLC0415
    from tests.support.users import ALICE, cheap_users  # noqa: PLC0415

    jwks, authorization = None, ALICE
    if auth == "bearer":  # a key set in service, and a token of its key
        key = SigningKey.generate("ES256", kid="bench")
        jwks, authorization = key_set(key), bearer(key.sign(claims("alice", 86400)))
    with tempfile.TemporaryDirectory() as directory:
        devnull = os.open(os.devnull, os.O_WRONLY)
        app, _ = quiet_app(Path(directory), devnull, cheap_users(alice="wonderland"), jwks)
        headers = FakeHeaders({"host": "echod.test", "authorization": authorization})
        headers["content-length"] = str(len(_BODY))
        scope = FakeScope("POST", "/api/echo", headers)
        # The credentials are verified once, as the first request of a client does.
        verifying = app._auth.authenticate(authorization, new_record())  # noqa: SLF001
        if verifying is not None:
            asyncio.new_event_loop().run_until_complete(verifying)
        # Steps are driven by hand, as granian's loop would run them, with the loop that
        # the request path asks for (its current task) said to be running.
        asyncio.events._set_running_loop(asyncio.new_event_loop())  # noqa: SLF001
        for _ in range(requests):
            proto = FakeProto(_BODY)
            coroutine = app.__rsgi__(scope, proto)  # type: ignore[arg-type]
            with contextlib.suppress(StopIteration):
                coroutine.send(None)
            if proto.response.status != 200:  # noqa: PLR2004
                raise SystemExit(f"the echo answered {proto.response.status}")


def _instructions(requests: int, auth: str) -> int:
    """The instructions one run with ``requests`` echoes executes, as callgrind counts them."""
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "callgrind.out"
        command = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
            sys.executable, "-m", "bench.instructions", "--worker", str(requests),
            "--auth", auth,
        ]  # fmt: skip
        subprocess.run(
            command,
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        found = _TOTAL.search(out.read_bytes())
    if found is None:
        raise SystemExit("callgrind wrote no summary")
    return int(found.group(1))


def count(requests: int, auth: str = "basic") -> float:
    """Instructions per echo: a run of ``requests`` echoes, less a run of none, per echo.

    ``auth`` is the credentials every echo carries, verified before: "basic" or "bearer".
    """
    return (_instructions(requests, auth) - _instructions(0, auth)) / requests


def main() -> None:
    """Print the instructions per echo of the code in this checkout."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="echoes counted (2000)")
    parser.add_argument(
        "--auth", choices=("basic", "bearer"), default="basic", help="the credentials (basic)"
    )
    parser.add_argument("--worker", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        _worker(args.worker, args.auth)
        return
    per_echo = count(args.requests, args.auth)
    print(f"{per_echo:,.0f} instructions per echo ({args.requests:,} echoes, {args.auth})")


if __name__ == "__main__":
    main()
