"""The comparison driver's command line and report (bench.compare), without servers."""

from __future__ import annotations

import pytest

from bench.compare import Run, describe, errors, parse, summarize

GO = "build/reference/go-echod -addr 127.0.0.1:{port}"
ECHOD = ".venv/bin/echod --host 127.0.0.1 --port {port} --tls-port 0"


def run(rate: float, p99_ms: float, cpu_us: float) -> Run:
    """A run with the figures that the ratios read."""
    return Run(rate=rate, p50_ms=1.0, p99_ms=p99_ms, non_2xx=0, socket_errors=1, cpu_us=cpu_us)


class TestParse:
    def test_the_defaults_are_the_documented_method(self) -> None:
        """5 rounds of 8 s, 2 s of warm-up, 2 wrk threads and 100 connections, HTTP."""
        args = parse(["--a", ECHOD, "--b", GO])
        assert (args.rounds, args.duration, args.warmup) == (5, 8, 2)
        assert (args.threads, args.connections, args.ws) == (2, 100, False)

    @pytest.mark.parametrize(
        "argv",
        [
            ["--a", "echod --port 3000", "--b", GO],
            ["--a", ECHOD, "--b", GO, "--name-a", "x", "--name-b", "x"],
            ["--a", ECHOD, "--b", GO, "--rounds", "0"],
            ["--a", ECHOD, "--b", GO, "--ws", "--wsload", "/nonexistent/wsload"],
        ],
        ids=["no-port-placeholder", "same-names", "no-rounds", "no-wsload"],
    )
    def test_bad_arguments_exit_2(self, argv: list[str]) -> None:
        """A command without {port}, equal names, no rounds or a missing wsload: exit 2."""
        with pytest.raises(SystemExit) as exit_info:
            parse(argv)
        assert exit_info.value.code == 2


class TestReport:
    def test_the_ratios_are_the_medians_of_the_per_round_ratios(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Throughput, p99 and CPU ratios: A/B per round, then the median of those."""
        runs = {
            "a": [run(50, 1, 40), run(60, 2, 40), run(10, 9, 90)],
            "b": [run(100, 4, 20), run(100, 4, 20), run(100, 3, 20)],
        }
        summarize(("a", "b"), runs, ws=False)
        last = capsys.readouterr().out.splitlines()[-1]
        assert last == "a / b, median of 3 rounds: throughput 0.50x  p99 0.50x  CPU/req 2.00x"

    def test_the_medians_add_up_the_errors(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Errors are totals over the rounds, rates and latencies medians."""
        runs = {"a": [run(1, 1, 1)] * 3, "b": [run(1, 1, 1)] * 3}
        summarize(("a", "b"), runs, ws=False)
        first = capsys.readouterr().out.splitlines()[0]
        assert first.endswith("total non-2xx 0  socket errors 3")

    def test_websocket_runs_count_messages(self) -> None:
        """With --ws the units are messages, and errors are failed or wrong echoes."""
        line = " ".join(describe(run(1234, 2.5, 8.3), ws=True).split())
        assert line == "1,234 msg/s p50 1.00 ms p99 2.50 ms CPU 8.3 us/msg"
        assert errors(run(1, 1, 1), ws=True) == "errors 1"
