"""make autobahn's parts without a server or wstest: the spec, the pass rule, the summary."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

import pytest

from scripts.autobahn import SELECTIONS, parse, spec
from scripts.autobahn_report import AutobahnError, CaseResult, Report, markdown, read_report

if TYPE_CHECKING:
    from pathlib import Path

GO = "build/reference/go-ws-echo -addr 127.0.0.1:{port} -max-message-bytes 20000000"


def write_run(folder: Path, planned: list[str], verdicts: dict[str, tuple[str, str]]) -> None:
    """The files a run leaves: the driver's plan.json and wstest's index.json."""
    folder.mkdir(parents=True, exist_ok=True)
    plan = {"cases": planned, "autobahntestsuite": "25.10.1", "autobahn": "0.10.9"}
    (folder / "plan.json").write_text(json.dumps(plan))
    index = {
        "go": {
            case: {"behavior": behavior, "behaviorClose": close, "duration": 1}
            for case, (behavior, close) in verdicts.items()
        }
    }
    (folder / "index.json").write_text(json.dumps(index))


def read(folder: Path) -> Report:
    """The report in ``folder``, as a run against the Go reference reads it."""
    return read_report(
        folder, server="go", command=GO, path="/api/raw", selection="full", seconds=21.6
    )


class TestSpec:
    def test_the_server_gets_the_demo_users_credentials(self, tmp_path: Path) -> None:
        """The server entry carries the Authorization header that the driver sends."""
        # As wstest reads it: JSON.
        made = json.loads(json.dumps(spec("go", "ws://127.0.0.1:1/api/raw", "full", tmp_path)))
        (server,) = made["servers"]
        scheme, token = server["headers"]["Authorization"].split()
        assert (scheme, base64.b64decode(token)) == ("Basic", b"remarkablebob:2rFtex")
        assert (server["agent"], made["outdir"]) == ("go", str(tmp_path))

    def test_the_smoke_run_leaves_out_the_large_messages_and_compression(self) -> None:
        """Smoke: groups 1 to 7 and 10 whole, and only the 64 KiB messages of group 9."""
        smoke = SELECTIONS["smoke"]
        assert [case for case in smoke if case.startswith("9.")] == ["9.1.1", "9.2.1"]
        assert not [case for case in smoke if case.split(".")[0] in {"12", "13"}]
        assert SELECTIONS["full"] == ["*"]


class TestParse:
    @pytest.mark.parametrize(
        "argv",
        [
            ["--name", "go", "--command", "go-ws-echo -addr 127.0.0.1:3000"],
            ["--name", "go", "--command", GO, "--cases", "some"],
        ],
        ids=["no-port-placeholder", "unknown-selection"],
    )
    def test_bad_arguments_exit_2(self, argv: list[str], tmp_path: Path) -> None:
        """A command without {port}, or a selection that does not exist: exit 2."""
        python = tmp_path / "python"
        python.touch()
        with pytest.raises(SystemExit) as exit_info:
            parse([*argv, "--wstest-python", str(python)])
        assert exit_info.value.code == 2

    def test_a_missing_wstest_virtualenv_exits_2(self, tmp_path: Path) -> None:
        """Without wstest's interpreter, the command line is refused before any server."""
        with pytest.raises(SystemExit) as exit_info:
            parse(["--name", "go", "--command", GO, "--wstest-python", str(tmp_path / "no")])
        assert exit_info.value.code == 2


class TestCaseResult:
    @pytest.mark.parametrize(
        ("case", "behavior", "close", "passed"),
        [
            ("1.1.1", "OK", "OK", True),
            ("6.4.1", "NON-STRICT", "OK", True),
            ("7.1.6", "INFORMATIONAL", "INFORMATIONAL", True),
            ("6.3.1", "FAILED", "FAILED", False),
            ("7.9.1", "WRONG CODE", "OK", False),
            ("1.1.1", "OK", "UNCLEAN", False),
            ("1.1.1", "UNIMPLEMENTED", "OK", False),
            ("12.1.1", "UNIMPLEMENTED", "OK", True),
            ("13.7.18", "UNIMPLEMENTED", "OK", True),
            ("13.1.1", "OK", "FAILED", False),
        ],
        ids=[
            "ok",
            "non-strict",
            "informational",
            "failed",
            "wrong-code",
            "unclean-close",
            "unimplemented-outside-compression",
            "compression-unimplemented",
            "compression-unimplemented-13",
            "compression-close-failed",
        ],
    )
    def test_the_pass_rule(self, case: str, behavior: str, close: str, passed: bool) -> None:
        """Both verdicts OK, NON-STRICT or INFORMATIONAL; UNIMPLEMENTED only in 12 and 13."""
        assert CaseResult(case, behavior, close).passed is passed


class TestReport:
    def test_a_clean_run_has_no_problems(self, tmp_path: Path) -> None:
        """Every planned case has a passing result: nothing to report, and it says so."""
        verdicts = {"1.1.1": ("OK", "OK"), "6.4.1": ("NON-STRICT", "OK")}
        write_run(tmp_path, list(verdicts), verdicts)
        report = read(tmp_path)
        assert report.problems() == []
        assert "Result: every case passed." in markdown(report).replace("\n", " ")

    def test_failed_and_unfinished_cases_are_named_in_plan_order(self, tmp_path: Path) -> None:
        """A failing verdict and a planned case with no result are both problems."""
        verdicts = {"1.1.1": ("OK", "OK"), "7.9.1": ("WRONG CODE", "OK")}
        write_run(tmp_path, ["1.1.1", "7.9.1", "9.1.6"], verdicts)
        assert read(tmp_path).problems() == [
            "7.9.1: WRONG CODE, close behaviour OK",
            "9.1.6: no result (wstest did not finish it)",
        ]

    def test_no_report_is_an_autobahn_error(self, tmp_path: Path) -> None:
        """wstest that wrote nothing (it never connected) is an error naming the folder."""
        with pytest.raises(AutobahnError, match="wstest wrote no report"):
            read(tmp_path)


class TestMarkdown:
    def test_counts_per_group_with_other_verdicts_as_failed(self, tmp_path: Path) -> None:
        """Group rows count each verdict; WRONG CODE falls in the FAILED column."""
        verdicts = {
            "6.1.1": ("OK", "OK"),
            "6.4.1": ("NON-STRICT", "OK"),
            "7.9.1": ("WRONG CODE", "OK"),
            "12.1.1": ("UNIMPLEMENTED", "OK"),
        }
        write_run(tmp_path, list(verdicts), verdicts)
        summary = markdown(read(tmp_path))
        verdict_table, close_table = summary.split("## Close behaviour")
        assert "| 6 UTF-8 Handling | 2 | 1 | 1 | 0 | 0 | 0 |" in verdict_table
        assert "| 7 Close Handling | 1 | 0 | 0 | 0 | 0 | 1 |" in verdict_table
        assert "| 12 Compression (payloads) | 1 | 0 | 0 | 0 | 1 | 0 |" in verdict_table
        assert "| 6 UTF-8 Handling | 2 | 2 | 0 | 0 | 0 | 0 |" in close_table
        assert "- 7.9.1: WRONG CODE, close behaviour OK" in summary
        assert "1 cases did not pass:" in summary.replace("\n", " ")

    def test_it_names_the_server_command_and_the_cases_passed_but_not_ok(
        self, tmp_path: Path
    ) -> None:
        """The command as run, and the NON-STRICT and INFORMATIONAL cases by id."""
        verdicts = {"6.4.1": ("NON-STRICT", "OK"), "7.1.6": ("INFORMATIONAL", "INFORMATIONAL")}
        write_run(tmp_path, list(verdicts), verdicts)
        summary = markdown(read(tmp_path)).replace("\n", " ")
        assert f"``` {GO} ```" in summary
        assert "6.4.1 NON-STRICT, 7.1.6 INFORMATIONAL (close INFORMATIONAL)." in summary
        assert "2 cases in 22 s" in summary
