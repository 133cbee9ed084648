"""Ranges: Range, If-Range and If-None-Match read as RFC 9110 says, over a representation."""

from __future__ import annotations

import pytest

from echod.http.problems import RangeNotSatisfiable
from echod.http.ranges import byte_range, if_range_holds, none_match

TAG = '"bytes-100-0"'


class TestByteRange:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param("bytes=0-9", (0, 9), id="first-last"),
            pytest.param("bytes=90-", (90, 99), id="open-ended"),
            pytest.param("bytes=-10", (90, 99), id="suffix"),
            pytest.param("bytes=-1000", (0, 99), id="suffix-longer-than-all"),
            pytest.param("bytes=50-5000", (50, 99), id="last-past-the-end"),
            pytest.param("bytes=99-99", (99, 99), id="last-byte"),
            pytest.param("BYTES=0-0", (0, 0), id="unit-any-case"),
            pytest.param("bytes= 1-2 ", (1, 2), id="spaces"),
            pytest.param("bytes=1-2,", (1, 2), id="empty-list-element"),
        ],
    )
    def test_one_range(self, value: str, expected: tuple[int, int]) -> None:
        """First and last byte, both included, cut to the size."""
        assert byte_range(value, 100) == expected

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param("bytes=0-1,5-6", id="several-ranges"),
            pytest.param("items=0-1", id="other-unit"),
            pytest.param("bytes=5-1", id="last-before-first"),
            pytest.param("bytes=a-b", id="not-digits"),
            pytest.param("bytes=-", id="no-numbers"),
            pytest.param("bytes", id="no-equals"),
            pytest.param("bytes=" + "9" * 20 + "-", id="twenty-digits"),
            pytest.param("bytes=1-2-3", id="three-parts"),
        ],
    )
    def test_what_is_ignored(self, value: str) -> None:
        """Malformed, another unit, or several ranges: the whole body instead."""
        assert byte_range(value, 100) is None

    @pytest.mark.parametrize(
        ("value", "size"),
        [
            pytest.param("bytes=100-", 100, id="starts-at-the-end"),
            pytest.param("bytes=500-600", 100, id="starts-past-the-end"),
            pytest.param("bytes=-0", 100, id="empty-suffix"),
            pytest.param("bytes=0-", 0, id="nothing-to-send"),
            pytest.param("bytes=-5", 0, id="suffix-of-nothing"),
        ],
    )
    def test_an_unsatisfiable_range_is_416_with_the_size(self, value: str, size: int) -> None:
        """Content-Range: bytes */size tells the client how many bytes there are."""
        with pytest.raises(RangeNotSatisfiable) as caught:
            byte_range(value, size)
        assert caught.value.status == 416
        assert caught.value.headers == (("content-range", f"bytes */{size}"),)


class TestIfRange:
    def test_the_same_strong_tag_holds(self) -> None:
        """The range goes through."""
        assert if_range_holds(TAG, TAG)

    @pytest.mark.parametrize(
        "value", ['"bytes-100-1"', f"W/{TAG}", "Sat, 29 Nov 2026 18:05:00 GMT", ""]
    )
    def test_anything_else_does_not(self, value: str) -> None:
        """Another tag, a weak one (strong comparison), or a date (no Last-Modified)."""
        assert not if_range_holds(value, TAG)


class TestIfNoneMatch:
    @pytest.mark.parametrize(
        "value", [TAG, f"W/{TAG}", f'"other", {TAG}', "*", f" {TAG} ", f'"x",W/{TAG}']
    )
    def test_a_listed_tag_or_any_matches(self, value: str) -> None:
        """Weak comparison: W/ is ignored; * matches any representation."""
        assert none_match(value, TAG)

    @pytest.mark.parametrize("value", [None, '"bytes-100-0-gzip"', "bytes-100-0", '""'])
    def test_others_do_not(self, value: str | None) -> None:
        """Absent, another coding's tag, or an unquoted value."""
        assert not none_match(value, TAG)
