"""make mutation's score: mutmut's results tallied per pattern, and the bar."""

from __future__ import annotations

import pytest

from scripts.mutation_score import main, report, tally

RESULTS = [
    "    echod.http.echo.x_echo__mutmut_1: killed",
    "    echod.http.echo.x_echo__mutmut_2: survived",
    "    echod.http.echo.x__too_deep__mutmut_1: timeout",
    "    echod.http.echo.x__too_deep__mutmut_10: no tests",
    "    echod.http.auth.x_parse_basic_auth__mutmut_1: killed",
    "    echod.http.auth.xǁAuthenticatorǁcheck__mutmut_1: not checked",
]


class TestTally:
    def test_each_mutant_counts_for_the_first_pattern_it_matches(self) -> None:
        """Patterns are globs over mutmut's names; a mutant is counted once."""
        echo, everything = tally(RESULTS, ["echod.http.echo.*", "echod.*"])
        assert (echo.mutants, everything.mutants) == (4, 2)

    def test_mutants_no_pattern_matches_are_left_out(self) -> None:
        """The functions make mutation did not run (the Authenticator's) do not count."""
        [auth] = tally(RESULTS, ["echod.http.auth.x_parse_basic_auth__*"])
        assert (auth.mutants, auth.killed, auth.score) == (1, 1, 100.0)

    @pytest.mark.parametrize(
        ("status", "killed"),
        [
            ("killed", 1),
            ("timeout", 1),
            ("survived", 0),
            ("no tests", 0),
            ("not checked", 0),
            ("suspicious", 0),
            ("segfault", 0),
        ],
        ids=["killed", "timeout", "survived", "no-tests", "not-checked", "suspicious", "segfault"],
    )
    def test_only_a_failing_or_hanging_test_kills(self, status: str, killed: int) -> None:
        """A mutant the tests did not fail on, or never ran, counts against the score."""
        [row] = tally([f"    echod.http.echo.x_echo__mutmut_1: {status}"], ["echod.http.echo.*"])
        assert (row.mutants, row.killed) == (1, killed)

    def test_lines_that_name_no_mutant_are_skipped(self) -> None:
        """Anything mutmut prints besides name: status is ignored."""
        [row] = tally(["", "Warning", *RESULTS[:2]], ["echod.*"])
        assert row.mutants == 2


class TestReport:
    def test_a_row_per_pattern_a_total_and_the_mutants_not_killed_in_order(self) -> None:
        """The table gives mutants, killed, not killed and the score; then the survivors."""
        text = report(
            tally(RESULTS, ["echod.http.echo.*", "echod.http.auth.x_parse_basic_auth__*"])
        )
        assert text.splitlines() == [
            "pattern                                mutants  killed  not killed   score",
            "echod.http.echo.*                            4       2           2   50.0 %",
            "echod.http.auth.x_parse_basic_auth__*        1       1           0  100.0 %",
            "all                                          5       3           2   60.0 %",
            "",
            "not killed:",
            "  echod.http.echo.x__too_deep__mutmut_10: no tests",
            "  echod.http.echo.x_echo__mutmut_2: survived",
        ]


class TestMain:
    @pytest.mark.parametrize(
        ("bar", "status"),
        [(60.0, 0), (60.1, 1)],
        ids=["at-the-bar", "under-the-bar"],
    )
    def test_a_score_under_the_bar_fails(
        self, capsys: pytest.CaptureFixture[str], bar: float, status: int
    ) -> None:
        """The bar is the lowest passing score: 60 % passes a bar of 60, not one of 60.1."""
        patterns = ["echod.http.echo.*", "echod.http.auth.x_parse_basic_auth__*"]
        assert main(["--bar", str(bar), *patterns], RESULTS) == status
        err = capsys.readouterr().err
        assert err == ("" if status == 0 else "mutation score 60.0 % is under the bar of 60.1 %\n")

    def test_a_pattern_that_matches_nothing_fails(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A misspelt pattern, or a module mutmut did not mutate, is an error, not a pass."""
        assert main(["--bar", "0", "echod.http.echo.*", "echod.http.nope.*"], RESULTS) == 1
        assert capsys.readouterr().err == (
            "no mutant matches echod.http.nope.*: was mutmut run on it?\n"
        )
