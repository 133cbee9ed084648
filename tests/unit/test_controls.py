"""Controls: the query decoded as a form, and each control's value read strictly or refused."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from echod.http.controls import Bounds, control, delay_ms, query_args
from echod.http.problems import BadRequest
from tests.support.harness import RepeatedHeaders

#: The bounds of a forced status, as /api/inspect has them.
STATUS = Bounds(200, 599)
#: Bounds wide enough that only a value's form decides.
WIDE = Bounds(0, 999_999_999)
_PLAIN = re.compile(r"[0-9]{1,9}")


def rsgi_headers(*pairs: tuple[str, str]) -> Any:
    """Fake headers of ``pairs``, typed as the RSGI headers they stand in for."""
    return RepeatedHeaders(*pairs)


def refused(
    args: dict[str, list[str]],
    name: str = "status",
    *,
    bounds: Bounds = STATUS,
    headers: Any = None,
    header: str = "",
) -> str:
    """The detail of the 400 that ``control`` raises for ``args``."""
    with pytest.raises(BadRequest) as caught:
        control(args, name, bounds, headers, header)
    assert caught.value.status == 400
    return caught.value.detail


class TestQueryArgs:
    def test_an_empty_query_has_no_args(self) -> None:
        """No query, no parameters."""
        assert query_args("") == {}

    def test_plus_is_a_space_and_percent_2b_is_a_plus(self) -> None:
        """Decoded as an HTML form: + is a space, %2B is a plus."""
        assert query_args("q=a+b%2Bc") == {"q": ["a b+c"]}

    def test_percent_encoded_utf8_is_decoded(self) -> None:
        """Values are UTF-8 once percent-decoded."""
        assert query_args("name=%C3%A9t%C3%A9&n=%E2%82%AC") == {"name": ["été"], "n": ["€"]}

    def test_names_are_decoded_too(self) -> None:
        """A name is decoded the same way as a value."""
        assert query_args("a+b%3D=1") == {"a b=": ["1"]}

    def test_a_bare_name_is_one_empty_value(self) -> None:
        """?flag is {"flag": [""]}, as ?flag= is."""
        assert query_args("flag") == {"flag": [""]}
        assert query_args("flag=") == {"flag": [""]}

    def test_repeated_names_keep_their_values_in_order(self) -> None:
        """Every value of a name is kept, in the order sent, blank ones included."""
        args = query_args("a=1&b=2&a=3&a=&b=x")
        assert args == {"a": ["1", "3", ""], "b": ["2", "x"]}
        assert list(args) == ["a", "b"]

    def test_empty_pairs_are_skipped(self) -> None:
        """Doubled and trailing ampersands add nothing."""
        assert query_args("a=1&&b=2&") == {"a": ["1"], "b": ["2"]}

    def test_only_the_ampersand_separates(self) -> None:
        """A semicolon is part of a value, as browsers encode forms."""
        assert query_args("a=1;b=2") == {"a": ["1;b=2"]}

    def test_an_equals_sign_in_a_value_is_kept(self) -> None:
        """Only the first = splits a pair."""
        assert query_args("a=b=c") == {"a": ["b=c"]}

    @pytest.mark.parametrize(
        "query",
        ["q=%FF", "%FF=1", "q=%C3", "q=%C3%28", "q=%ED%A0%80", "ok=1&q=%80"],
        ids=["ff", "in-name", "truncated", "bad-continuation", "surrogate", "after-a-good-one"],
    )
    def test_non_utf8_percent_encoding_is_a_400(self, query: str) -> None:
        """Bytes that are not UTF-8 once percent-decoded are a bad request, not a crash."""
        with pytest.raises(BadRequest, match="not UTF-8") as caught:
            query_args(query)
        assert caught.value.status == 400

    def test_the_400_names_the_query_string_and_the_encoding(self) -> None:
        """The detail is the whole sentence a client reads, nothing added or changed."""
        with pytest.raises(BadRequest) as caught:
            query_args("q=%FF")
        assert caught.value.detail == "the query string is not UTF-8 once percent-decoded"

    @given(st.dictionaries(st.text(min_size=1), st.lists(st.text(), min_size=1), max_size=5))
    @settings(max_examples=200, deadline=None, database=None)
    def test_a_form_encoded_query_decodes_to_what_was_encoded(
        self, params: dict[str, list[str]]
    ) -> None:
        """Whatever names and values a form encodes come back as they were."""
        query = urlencode([(name, value) for name, values in params.items() for value in values])
        assert query_args(query) == params


class TestControlFromTheQuery:
    def test_absent_is_none(self) -> None:
        """A control nobody asked for is None."""
        assert control({}, "status", STATUS) is None
        assert control({"other": ["1"]}, "status", STATUS) is None

    def test_plain_digits_are_the_value(self) -> None:
        """The value is the number the digits write."""
        assert control({"status": ["418"]}, "status", STATUS) == 418

    def test_leading_zeros_are_digits_too(self) -> None:
        """0200 is plain digits, and within nine of them."""
        assert control({"status": ["0200"]}, "status", STATUS) == 200

    @pytest.mark.parametrize("value", [200, 599])
    def test_both_bounds_are_inclusive(self, value: int) -> None:
        """The lowest and the highest value are allowed."""
        assert control({"status": [str(value)]}, "status", STATUS) == value

    @pytest.mark.parametrize("value", ["199", "600", "0", "999999999"])
    def test_values_out_of_bounds_are_a_400(self, value: str) -> None:
        """One under the low bound or over the high one is refused, and the bounds are named."""
        detail = refused({"status": [value]})
        assert f"status={value!r}" in detail
        assert "from 200 to 599" in detail

    @pytest.mark.parametrize(
        "value",
        [
            "-1",
            "+200",
            " 200",
            "200 ",
            "2 00",
            "200.0",
            "200.",
            "2e2",
            "0x1f",
            "1_000",
            "200\n",
            "\u0663",  # ARABIC-INDIC DIGIT THREE
            "\u0662\u0660\u0660",  # 200 in Arabic-Indic digits
            "\uff12\uff10\uff10",  # 200 in fullwidth digits
            "\u00b2",  # SUPERSCRIPT TWO
            "1234567890",
            "0000000200",
            "99999999999999999999999999",
            "",
            "abc",
        ],
        ids=[
            "negative",
            "leading-plus",
            "leading-space",
            "trailing-space",
            "inner-space",
            "fraction",
            "trailing-dot",
            "exponent",
            "hex",
            "underscore",
            "trailing-newline",
            "arabic-indic-digit",
            "arabic-indic-number",
            "fullwidth-digits",
            "superscript",
            "ten-digits",
            "ten-digits-with-zeros",
            "overflow",
            "empty",
            "letters",
        ],
    )
    def test_anything_but_plain_digits_is_a_400(self, value: str) -> None:
        """Signs, spaces, fractions, exponents, non-ASCII digits and 10+ digits are refused."""
        detail = refused({"delay_ms": [value]}, "delay_ms", bounds=WIDE)
        assert detail.startswith(f"delay_ms={value[:40]!r} ")
        assert "is not a whole number from 0 to 999999999" in detail

    def test_nine_digits_are_accepted(self) -> None:
        """The widest value allowed is nine digits."""
        assert control({"n": ["999999999"]}, "n", WIDE) == 999_999_999

    def test_a_bare_flag_is_a_400(self) -> None:
        """?status (no value) is an empty value, not an absent control."""
        detail = refused(query_args("status"))
        assert detail.startswith("status='' ")

    def test_a_long_bad_value_is_cut_in_the_detail(self) -> None:
        """The detail repeats at most 40 characters of what was sent."""
        detail = refused({"status": ["x" * 1000]})
        assert "x" * 40 in detail
        assert "x" * 41 not in detail

    @pytest.mark.parametrize("values", [["200", "201"], ["200", "200"], ["1", "2", "3"]])
    def test_given_twice_is_a_400_naming_it(self, values: list[str]) -> None:
        """The same control twice is refused, even with the same value twice."""
        detail = refused({"status": values})
        assert detail == f"status is given {len(values)} times; give it once"

    def test_given_twice_through_the_query_string(self) -> None:
        """?status=200&status=201 counts as twice."""
        assert "status is given 2 times" in refused(query_args("status=200&status=201"))

    @given(st.integers(min_value=200, max_value=599))
    @settings(max_examples=100, deadline=None, database=None)
    def test_every_value_in_bounds_reads_back(self, value: int) -> None:
        """Any number within the bounds, written in digits, is that number."""
        assert control({"status": [str(value)]}, "status", STATUS) == value

    @given(st.text(max_size=12))
    @settings(max_examples=300, deadline=None, database=None)
    def test_any_text_that_is_not_plain_digits_is_refused(self, raw: str) -> None:
        """Only 1 to 9 ASCII digits are ever read as a value."""
        if _PLAIN.fullmatch(raw):
            assert control({"n": [raw]}, "n", WIDE) == int(raw)
        else:
            with pytest.raises(BadRequest):
                control({"n": [raw]}, "n", WIDE)


class TestControlFromAHeader:
    def test_the_header_is_used_when_the_query_has_none(self) -> None:
        """A header stands in for a query parameter that is absent."""
        headers = rsgi_headers(("x-echod-status", "503"))
        assert control({}, "status", STATUS, headers, "x-echod-status") == 503

    def test_the_query_wins_over_the_header(self) -> None:
        """Both given: the query's value is used."""
        headers = rsgi_headers(("x-echod-status", "503"))
        args = {"status": ["201"]}
        assert control(args, "status", STATUS, headers, "x-echod-status") == 201

    @pytest.mark.parametrize("bad", ["abc", "", "9999"])
    def test_the_query_wins_even_when_its_value_is_bad(self, bad: str) -> None:
        """A bad query value is a 400 naming the parameter; a good header does not save it."""
        headers = rsgi_headers(("x-echod-status", "503"))
        detail = refused({"status": [bad]}, headers=headers, header="x-echod-status")
        assert detail.startswith(f"status={bad!r} ")
        assert "x-echod-status" not in detail

    def test_a_bad_header_value_is_a_400_naming_the_header(self) -> None:
        """The detail names the header the value came from."""
        headers = rsgi_headers(("x-echod-status", "2e2"))
        detail = refused({}, headers=headers, header="x-echod-status")
        assert detail.startswith("x-echod-status='2e2' ")
        assert "from 200 to 599" in detail

    def test_a_header_out_of_bounds_is_a_400(self) -> None:
        """The header's value is held to the same bounds as the query's."""
        headers = rsgi_headers(("x-echod-status", "600"))
        assert "x-echod-status='600'" in refused({}, headers=headers, header="x-echod-status")

    def test_a_header_given_twice_is_a_400_naming_it(self) -> None:
        """Two header lines of the control are refused."""
        headers = rsgi_headers(("x-echod-status", "503"), ("x-echod-status", "503"))
        detail = refused({}, headers=headers, header="x-echod-status")
        assert detail == "x-echod-status is given 2 times; give it once"

    def test_no_header_is_none(self) -> None:
        """Neither the query nor the header has it: None."""
        headers = rsgi_headers(("x-other", "1"))
        assert control({}, "status", STATUS, headers, "x-echod-status") is None

    def test_headers_without_a_header_name_are_not_read(self) -> None:
        """A control with no header (a stream's) never reads one."""
        headers = rsgi_headers(("status", "503"), ("", "503"))
        assert control({}, "status", STATUS, headers) is None

    def test_a_header_name_without_headers_is_none(self) -> None:
        """No headers at hand: only the query counts."""
        assert control({}, "status", STATUS, None, "x-echod-status") is None


class TestDelayMs:
    @pytest.mark.parametrize(
        ("max_delay", "high"), [(10.0, 10_000), (0.5, 500), (0.0, 0), (2.25, 2250), (0.0004, 0)]
    )
    def test_bounds_are_zero_to_max_delay_in_milliseconds(
        self, max_delay: float, high: int
    ) -> None:
        """From 0 to --max-delay seconds, written in whole milliseconds."""
        assert delay_ms(max_delay) == Bounds(0, high)

    def test_the_max_delay_itself_is_allowed_and_one_more_is_not(self) -> None:
        """A delay of exactly --max-delay is fine; one millisecond more is a 400."""
        bounds = delay_ms(1.5)
        assert control({"delay_ms": ["1500"]}, "delay_ms", bounds) == 1500
        assert control({"delay_ms": ["0"]}, "delay_ms", bounds) == 0
        detail = refused({"delay_ms": ["1501"]}, "delay_ms", bounds=bounds)
        assert "from 0 to 1500" in detail
