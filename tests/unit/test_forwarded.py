"""Forwarded: what proxies claim about a request, read from RFC 7239 and X-Forwarded-* headers."""

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


class TestForwardedFor:
    def test_absent_everything_is_empty(self) -> None:
        """No such header: for is [] and the rest None."""
        assert claims(("host", "echod.test")) == {
            "for": [],
            "proto": None,
            "host": None,
            "realIp": None,
        }

    def test_each_element_gives_its_for_in_order(self) -> None:
        """Several elements and header lines list their addresses in order."""
        found = claims(
            ("forwarded", "for=192.0.2.43, for=198.51.100.17"),
            ("forwarded", "for=203.0.113.9;proto=https"),
        )
        assert found["for"] == ["192.0.2.43", "198.51.100.17", "203.0.113.9"]

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
        assert claims(("forwarded", value))["for"] == [address]

    def test_elements_without_for_add_no_address(self) -> None:
        """An element with only by or proto is skipped in the list of addresses."""
        found = claims(("forwarded", "by=203.0.113.43, for=192.0.2.1, proto=https"))
        assert found["for"] == ["192.0.2.1"]

    def test_x_forwarded_for_is_the_fallback(self) -> None:
        """With no Forwarded header, the items of X-Forwarded-For are the addresses."""
        found = claims(
            ("x-forwarded-for", "192.0.2.43, 2001:db8::1 ,198.51.100.17"),
            ("x-forwarded-for", "unknown"),
        )
        assert found["for"] == ["192.0.2.43", "2001:db8::1", "198.51.100.17", "unknown"]

    def test_empty_x_forwarded_for_items_are_dropped(self) -> None:
        """Blank items between commas are not addresses."""
        found = claims(("x-forwarded-for", " , 192.0.2.1,, ,"), ("x-forwarded-for", ""))
        assert found["for"] == ["192.0.2.1"]

    def test_forwarded_for_wins_over_x_forwarded_for(self) -> None:
        """When Forwarded names addresses, X-Forwarded-For is not read."""
        found = claims(
            ("x-forwarded-for", "10.0.0.1"),
            ("forwarded", "for=192.0.2.60"),
        )
        assert found["for"] == ["192.0.2.60"]

    def test_x_forwarded_for_is_used_when_forwarded_has_no_for(self) -> None:
        """A Forwarded header that names no address leaves X-Forwarded-For as the source."""
        found = claims(
            ("forwarded", "proto=https;host=echod.example"),
            ("x-forwarded-for", "192.0.2.43"),
        )
        assert found["for"] == ["192.0.2.43"]

    def test_a_forwarded_header_without_elements_falls_back(self) -> None:
        """A Forwarded header of nothing parseable is as if absent."""
        found = claims(("forwarded", "garbage"), ("x-forwarded-for", "192.0.2.43"))
        assert found["for"] == ["192.0.2.43"]


class TestProtoAndHost:
    def test_from_the_first_element_that_has_them(self) -> None:
        """proto and host come from the first element naming each, not the last."""
        found = claims(
            ("forwarded", "for=a, for=b;proto=https, for=c;proto=http;host=one.example"),
            ("forwarded", "host=two.example"),
        )
        assert found["proto"] == "https"
        assert found["host"] == "one.example"

    def test_forwarded_wins_over_x_forwarded(self) -> None:
        """Forwarded's proto and host are preferred to X-Forwarded-Proto and -Host."""
        found = claims(
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "other.example"),
            ("forwarded", 'proto=https;host="echod.example:8443"'),
        )
        assert found["proto"] == "https"
        assert found["host"] == "echod.example:8443"

    def test_x_forwarded_proto_and_host_are_the_fallback(self) -> None:
        """Without them in Forwarded, X-Forwarded-Proto and X-Forwarded-Host are reported."""
        found = claims(
            ("forwarded", "for=192.0.2.1"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "echod.example"),
        )
        assert found == {
            "for": ["192.0.2.1"],
            "proto": "https",
            "host": "echod.example",
            "realIp": None,
        }

    def test_each_falls_back_on_its_own(self) -> None:
        """proto from Forwarded, host from X-Forwarded-Host."""
        found = claims(("forwarded", "proto=https"), ("x-forwarded-host", "echod.example"))
        assert (found["proto"], found["host"]) == ("https", "echod.example")


class TestRealIp:
    def test_x_real_ip_is_reported(self) -> None:
        """realIp is X-Real-IP as sent, whatever else is there."""
        found = claims(("x-real-ip", "198.51.100.7"), ("forwarded", "for=192.0.2.1"))
        assert found["realIp"] == "198.51.100.7"
        assert found["for"] == ["192.0.2.1"]

    def test_x_real_ip_alone(self) -> None:
        """Only X-Real-IP: nothing else is claimed."""
        assert claims(("x-real-ip", "2001:db8::7")) == {
            "for": [],
            "proto": None,
            "host": None,
            "realIp": "2001:db8::7",
        }
