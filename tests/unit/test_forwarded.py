"""Forwarded: what proxies claim about a request, each of RFC 7239 and X-Forwarded-* on its own."""

from __future__ import annotations

from typing import Any, cast

import pytest

from echod.http.forwarded import elements, forwarded
from tests.support.harness import RepeatedHeaders


def claims(*pairs: tuple[str, str]) -> dict[str, object]:
    """What :func:`forwarded` reports for headers made of ``pairs``."""
    return forwarded(cast("Any", RepeatedHeaders(*pairs)))


class TestElements:
    def test_one_element_with_several_parameters(self) -> None:
        """Parameters are split at semicolons, names lower-cased, values kept."""
        found = list(elements(["for=192.0.2.60;proto=http;by=203.0.113.43;host=Echod.Example"]))
        assert found == [
            {"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43", "host": "Echod.Example"}
        ]

    def test_elements_are_split_at_commas(self) -> None:
        """Each comma-separated element is one dictionary, in order."""
        found = list(elements(["for=192.0.2.43, for=198.51.100.17;proto=https"]))
        assert found == [{"for": "192.0.2.43"}, {"for": "198.51.100.17", "proto": "https"}]

    def test_several_header_lines_keep_their_order(self) -> None:
        """The elements of each line follow those of the line before."""
        found = list(elements(["for=a, for=b", "for=c", "for=d;proto=https"]))
        assert [element["for"] for element in found] == ["a", "b", "c", "d"]

    @pytest.mark.parametrize(
        ("raw", "value"),
        [
            ('"a,b"', "a,b"),
            ('"a;b=c"', "a;b=c"),
            ('"a\\"b"', 'a"b'),
            ('"a\\\\b"', "a\\b"),
            ('"\\,x"', ",x"),
            ('""', ""),
            ('"[2001:db8:cafe::17]:4711"', "[2001:db8:cafe::17]:4711"),
        ],
        ids=[
            "comma",
            "semicolon-and-equals",
            "escaped-quote",
            "escaped-backslash",
            "escape",
            "empty",
            "ipv6",
        ],
    )
    def test_quoted_values_are_unquoted(self, raw: str, value: str) -> None:
        """A quoted string may hold commas, semicolons and escaped quotes (RFC 9110 5.6.4)."""
        found = list(elements([f"for={raw};proto=https, for=next"]))
        assert found == [{"for": value, "proto": "https"}, {"for": "next"}]

    def test_parameter_names_are_case_insensitive(self) -> None:
        """For, PROTO and Host are for, proto and host; the values keep their case."""
        found = list(elements(["For=Unknown;PROTO=HTTPS;Host=Example.COM"]))
        assert found == [{"for": "Unknown", "proto": "HTTPS", "host": "Example.COM"}]

    def test_spaces_around_parameters_are_ignored(self) -> None:
        """Optional whitespace around elements and parameters is not part of them."""
        found = list(elements(["  for=a ;  proto=https  ,   for=b  "]))
        assert found == [{"for": "a", "proto": "https"}, {"for": "b"}]

    def test_empty_and_malformed_parts_are_skipped(self) -> None:
        """Empty elements, parameters without = and nameless ones give nothing."""
        found = list(elements(["for=a,,;, garbage ,=x, ;for=b;junk", ""]))
        assert found == [{"for": "a"}, {"for": "b"}]

    def test_no_values_no_elements(self) -> None:
        """Nothing in, nothing out."""
        assert list(elements([])) == []


EMPTY: dict[str, list[object]] = {
    "forwarded": [],
    "xForwardedFor": [],
    "xForwardedProto": [],
    "xForwardedHost": [],
    "xForwardedPort": [],
    "xRealIp": [],
}


class TestEachSource:
    def test_absent_everything_is_empty(self) -> None:
        """No such header: every source is []."""
        assert claims(("host", "echod.test")) == EMPTY

    def test_each_element_of_forwarded_is_reported_in_order(self) -> None:
        """Several elements and header lines give their parameters in order."""
        found = claims(
            ("forwarded", "for=192.0.2.43, for=198.51.100.17"),
            ("forwarded", "for=203.0.113.9;proto=https"),
        )
        assert found["forwarded"] == [
            {"for": "192.0.2.43"},
            {"for": "198.51.100.17"},
            {"for": "203.0.113.9", "proto": "https"},
        ]

    @pytest.mark.parametrize(
        ("value", "address"),
        [
            ('for="[2001:db8::1]:4711"', "[2001:db8::1]:4711"),
            ('for="[2001:db8::1]"', "[2001:db8::1]"),
            ('for="192.0.2.43:47011"', "192.0.2.43:47011"),
            ("for=unknown", "unknown"),
            ("for=_hidden", "_hidden"),
            ('for="_SEVKISEK:_Port"', "_SEVKISEK:_Port"),
        ],
        ids=["ipv6-with-port", "ipv6", "port", "unknown", "obfuscated", "obfuscated-port"],
    )
    def test_addresses_are_kept_as_sent(self, value: str, address: str) -> None:
        """Brackets, ports, unknown and obfuscated names are reported, not interpreted."""
        assert claims(("forwarded", value))["forwarded"] == [{"for": address}]

    def test_x_forwarded_headers_list_their_items(self) -> None:
        """Each X-Forwarded-* header's items, in order over its lines, blanks dropped."""
        found = claims(
            ("x-forwarded-for", "192.0.2.43, 2001:db8::1 ,198.51.100.17"),
            ("x-forwarded-for", "unknown"),
            ("x-forwarded-proto", "https, http"),
            ("x-forwarded-host", "echod.example:8443"),
            ("x-forwarded-port", "8443"),
            ("x-forwarded-for", " , ,"),
        )
        assert found["xForwardedFor"] == ["192.0.2.43", "2001:db8::1", "198.51.100.17", "unknown"]
        assert found["xForwardedProto"] == ["https", "http"]
        assert found["xForwardedHost"] == ["echod.example:8443"]
        assert found["xForwardedPort"] == ["8443"]

    def test_a_forged_forwarded_hides_nothing_a_proxy_added(self) -> None:
        """A client's Forwarded and the X-Forwarded-For a proxy appended are both reported.

        Before, a Forwarded header took the place of X-Forwarded-For in one summary, so a
        client could hide what the proxy said of it.
        """
        found = claims(
            ("forwarded", "for=198.51.100.66;proto=https;host=forged.example"),
            ("x-forwarded-for", "127.0.0.1"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "echod.example"),
        )
        assert found["forwarded"] == [
            {"for": "198.51.100.66", "proto": "https", "host": "forged.example"}
        ]
        assert found["xForwardedFor"] == ["127.0.0.1"]
        assert found["xForwardedProto"] == ["http"]
        assert found["xForwardedHost"] == ["echod.example"]

    def test_a_forwarded_header_without_elements_is_empty(self) -> None:
        """A Forwarded header of nothing parseable gives no element."""
        found = claims(("forwarded", "garbage"), ("x-forwarded-for", "192.0.2.43"))
        assert found == {**EMPTY, "xForwardedFor": ["192.0.2.43"]}

    def test_x_real_ip_lists_each_value(self) -> None:
        """X-Real-IP as sent, each line, whatever else is there."""
        found = claims(
            ("x-real-ip", "198.51.100.7"), ("x-real-ip", " "), ("forwarded", "for=192.0.2.1")
        )
        assert found["xRealIp"] == ["198.51.100.7"]
        assert found["forwarded"] == [{"for": "192.0.2.1"}]
