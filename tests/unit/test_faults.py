"""Faults: statuses picked by weight, delays picked in a range, and seeds that repeat them."""

from __future__ import annotations

from collections import Counter

import pytest

from echod.http.controls import Bounds, Controls
from echod.http.faults import MAX_ENTRIES, faults
from echod.http.problems import BadRequest
from tests.support.harness import FakeHeaders, FakeScope

STATUS = Bounds(200, 599)
DELAY = Bounds(0, 10_000)


def picked(query: str = "", **headers: str) -> tuple[int, int, tuple[str, str] | None]:
    """What one request with ``query`` and ``headers`` gets picked."""
    scope = FakeScope("GET", "/api/inspect", FakeHeaders(headers), query_string=query)
    return faults(Controls(scope), STATUS, DELAY).choose()  # type: ignore[arg-type]


def refused(query: str) -> str:
    """The detail of the 400 that ``query`` gets."""
    scope = FakeScope("GET", "/api/inspect", FakeHeaders(), query_string=query)
    with pytest.raises(BadRequest) as caught:
        faults(Controls(scope), STATUS, DELAY)  # type: ignore[arg-type]
    return caught.value.detail


class TestStatus:
    def test_without_a_status_it_is_200_and_nothing_is_said(self) -> None:
        """No control, no choice: 200, no wait, no X-Echod-Chosen."""
        assert picked() == (200, 0, None)

    def test_a_plain_status_is_no_choice(self) -> None:
        """status=503 is answered 503, and no header says it was picked."""
        assert picked("status=503") == (503, 0, None)

    def test_weights_are_honoured(self) -> None:
        """200:8,503:2 picks 503 about one time in five."""
        counts = Counter(picked(f"status=200:8,503:2&seed={seed}")[0] for seed in range(2000))
        assert set(counts) == {200, 503}
        assert 300 < counts[503] < 500

    def test_a_weight_of_zero_is_never_picked(self) -> None:
        """An entry may be switched off with weight 0."""
        assert {picked(f"status=500:0,201&seed={seed}")[0] for seed in range(200)} == {201}

    def test_an_entry_without_a_weight_weighs_one(self) -> None:
        """status=200,503 picks both, about as often."""
        counts = Counter(picked(f"status=200,503&seed={seed}")[0] for seed in range(1000))
        assert 400 < counts[503] < 600

    def test_the_header_names_the_pick(self) -> None:
        """X-Echod-Chosen says the status and the delay the answer got."""
        status, wait, chosen = picked("status=200:1,503:1&seed=7")
        assert chosen == ("x-echod-chosen", f"status={status}; delay_ms={wait}")

    def test_the_header_form_works_too(self) -> None:
        """X-Echod-Status takes the same weighted list."""
        assert picked(**{"x-echod-status": "418:1", "x-echod-seed": "3"})[0] == 418

    @pytest.mark.parametrize(
        ("query", "said"),
        [
            pytest.param("status=200:", "status='200:'", id="empty-weight"),
            pytest.param("status=200:-1", "status='200:-1'", id="negative-weight"),
            pytest.param("status=200:1.5", "status='200:1.5'", id="fractional-weight"),
            pytest.param("status=200:1000001", "from 0 to 1000000", id="weight-over-bound"),
            pytest.param("status=199:1,200:1", "from 200 to 599", id="status-below"),
            pytest.param("status=200,,503", "status='200,,503'", id="empty-entry"),
            pytest.param("status=200:1, 503:1", "status='200:1, 503:1'", id="space"),
            pytest.param("status=200:0,503:0", "weighs nothing", id="all-weightless"),
            pytest.param("status=" + ",".join(["200"] * 11), "at most 10", id="eleven-entries"),
        ],
    )
    def test_a_bad_list_is_a_400_naming_status(self, query: str, said: str) -> None:
        """Every entry is a status in bounds, with an optional whole weight."""
        detail = refused(query)
        assert "status" in detail
        assert said in detail

    def test_ten_entries_are_allowed(self) -> None:
        """MAX_ENTRIES is the bound, inclusive."""
        statuses = ",".join(str(200 + n) for n in range(MAX_ENTRIES))
        assert 200 <= picked(f"status={statuses}")[0] < 200 + MAX_ENTRIES


class TestDelay:
    def test_a_range_picks_within_it(self) -> None:
        """delay_ms=100-500 waits from 100 to 500 ms, both ends included in its reach."""
        waits = {picked(f"delay_ms=100-104&seed={seed}")[1] for seed in range(300)}
        assert waits == {100, 101, 102, 103, 104}

    def test_a_range_of_one_value(self) -> None:
        """A range whose ends are equal is that delay, and still says so."""
        assert picked("delay_ms=250-250") == (
            200,
            250,
            ("x-echod-chosen", "status=200; delay_ms=250"),
        )

    def test_a_plain_delay_is_no_choice(self) -> None:
        """delay_ms=250 waits 250 ms and picks nothing."""
        assert picked("delay_ms=250") == (200, 250, None)

    @pytest.mark.parametrize(
        "query",
        [
            pytest.param("delay_ms=500-100", id="reversed"),
            pytest.param("delay_ms=100-10001", id="end-over-max"),
            pytest.param("delay_ms=-100", id="no-start"),
            pytest.param("delay_ms=100-", id="no-end"),
            pytest.param("delay_ms=1-2-3", id="three-parts"),
        ],
    )
    def test_a_bad_range_is_a_400_naming_delay_ms(self, query: str) -> None:
        """Both ends are plain digits within the bound, the start first."""
        assert "delay_ms" in refused(query)


class TestSeed:
    def test_a_seed_repeats_the_choices(self) -> None:
        """The same seed picks the same status and delay, every time."""
        query = "status=200:1,500:1,503:1&delay_ms=0-10000&seed=42"
        assert len({picked(query) for _ in range(20)}) == 1

    def test_different_seeds_pick_differently(self) -> None:
        """Seeds spread the choices."""
        picks = {picked(f"status=200:1,503:1&delay_ms=0-10000&seed={n}") for n in range(20)}
        assert len(picks) > 10

    def test_the_delay_of_a_seed_does_not_depend_on_the_status_list(self) -> None:
        """The status takes the first draw whether or not it is weighted."""
        plain = picked("delay_ms=0-10000&seed=9")[1]
        assert picked("status=200:1,503:1&delay_ms=0-10000&seed=9")[1] == plain

    @pytest.mark.parametrize("seed", ["-1", "1e3", "1000000000", "x"])
    def test_a_bad_seed_is_a_400_naming_it(self, seed: str) -> None:
        """A seed is a whole number from 0 to 999,999,999."""
        assert "seed" in refused(f"seed={seed}")
