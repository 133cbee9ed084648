"""Shaping: the headers and body a request gives /api/inspect, and the headers a status needs."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from echod.http.controls import Controls
from echod.http.problems import BadRequest
from echod.http.shaping import MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_HEADERS, Shape, shape
from tests.support.harness import FakeScope, RepeatedHeaders

ALLOW = "GET, HEAD, POST, PUT, PATCH, DELETE"


def shaped(query: str = "", *headers: tuple[str, str]) -> Shape:
    """The shape that a request with ``query`` and ``headers`` asks for."""
    scope = FakeScope("GET", "/api/inspect", RepeatedHeaders(*headers), query_string=query)  # type: ignore[arg-type]
    return shape(Controls(scope))  # type: ignore[arg-type]


def refused(query: str = "", *headers: tuple[str, str]) -> str:
    """The detail of the 400 the request gets."""
    with pytest.raises(BadRequest) as caught:
        shaped(query, *headers)
    return caught.value.detail


def header(item: str) -> str:
    """A ``header=`` parameter carrying ``item``, percent-encoded."""
    return "header=" + quote(item, safe="")


class TestHeaders:
    def test_headers_are_added_in_order_with_names_in_lower_case(self) -> None:
        """Repeated header= parameters give one header each."""
        given = shaped(f"{header('X-A: 1')}&{header('X-A:2')}&{header('Link: </a>; rel=next')}")
        assert given.headers == (("x-a", "1"), ("x-a", "2"), ("link", "</a>; rel=next"))

    def test_the_header_form_is_repeatable_too(self) -> None:
        """X-Echod-Header: Name: Value, once per header."""
        given = shaped("", ("x-echod-header", "X-One: 1"), ("x-echod-header", "X-Two: 2"))
        assert given.headers == (("x-one", "1"), ("x-two", "2"))

    def test_the_query_wins_over_the_header_form(self) -> None:
        """Any header= parameter means the X-Echod-Header headers are not read."""
        given = shaped(header("X-Q: q"), ("x-echod-header", "X-H: h"))
        assert given.headers == (("x-q", "q"),)

    def test_an_empty_value_and_tabs_are_kept(self) -> None:
        """A value may be empty, and hold spaces and tabs inside."""
        assert shaped(header("X-E:")).headers == (("x-e", ""),)
        assert shaped(header("X-T: a\tb c")).headers == (("x-t", "a\tb c"),)

    @pytest.mark.parametrize(
        "name",
        [
            "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "TE",
            "Trailer", "Proxy-Authenticate", "proxy-connection",
        ],
    )  # fmt: skip
    def test_framing_and_hop_by_hop_names_are_refused(self, name: str) -> None:
        """Only the server frames an answer: these are a 400 naming the control."""
        detail = refused(header(f"{name}: x"))
        assert "header" in detail
        assert name in detail

    @pytest.mark.parametrize("name", ["Content-Type", "X-Request-ID", "X-Response-Time"])
    def test_headers_echod_writes_are_refused(self, name: str) -> None:
        """The type has content_type=, the id and time are the request's own."""
        assert name in refused(header(f"{name}: x"))

    @pytest.mark.parametrize(
        "item",
        [
            pytest.param("no-colon", id="no-colon"),
            pytest.param(": value", id="empty-name"),
            pytest.param("Bad Name: x", id="space-in-name"),
            pytest.param("Bad(Name): x", id="separator-in-name"),
            pytest.param("X-A: caf\u00e9", id="non-ascii-value"),
            pytest.param("X-A: a\x00b", id="nul-in-value"),
            pytest.param("X-A: a\x7fb", id="del-in-value"),
        ],
    )
    def test_a_malformed_header_is_a_400(self, item: str) -> None:
        """The name is an RFC 9110 token; the value visible ASCII, space and tab."""
        assert "header" in refused(header(item))

    def test_at_most_twenty_headers(self) -> None:
        """MAX_HEADERS pass; one more is a 400."""
        query = "&".join(header(f"X-{n}: v") for n in range(MAX_HEADERS))
        assert len(shaped(query).headers) == MAX_HEADERS
        assert "at most 20" in refused(f"{query}&{header('X-Last: v')}")

    def test_at_most_eight_kib_in_all(self) -> None:
        """Names and values count; 8 KiB pass and one byte more does not."""
        value = "v" * (MAX_HEADER_BYTES - 4)
        assert shaped(header(f"X-Ab: {value}")).headers[0][1] == value
        assert "8192" in refused(header(f"X-Abc: {value}"))


class TestBody:
    def test_body_and_type(self) -> None:
        """body= in UTF-8, under content_type=."""
        given = shaped("body=h%C3%A9llo&content_type=text/html%3B%20charset%3Dutf-8")
        assert (given.body, given.content_type) == ("héllo".encode(), "text/html; charset=utf-8")

    def test_a_body_of_64_kib_and_no_more(self) -> None:
        """MAX_BODY_BYTES of UTF-8 pass, one more is refused."""
        assert shaped("body=" + "a" * MAX_BODY_BYTES).body == b"a" * MAX_BODY_BYTES
        assert "body" in refused("body=" + "a" * (MAX_BODY_BYTES + 1))

    @pytest.mark.parametrize("value", ["html", "text/", "/html", "text/html\x00", "a b/c"])
    def test_a_type_that_is_not_a_media_type_is_refused(self, value: str) -> None:
        """content_type= is type/subtype with optional parameters."""
        assert "content_type" in refused("content_type=" + quote(value, safe=""))


class TestNeededHeaders:
    @pytest.mark.parametrize(
        ("status", "needed"),
        [
            pytest.param(401, ("www-authenticate", 'Basic realm="echod"'), id="401"),
            pytest.param(405, ("allow", ALLOW), id="405"),
            pytest.param(429, ("retry-after", "1"), id="429"),
            pytest.param(503, ("retry-after", "1"), id="503"),
        ],
    )
    def test_a_status_gets_the_header_it_needs(self, status: int, needed: tuple[str, str]) -> None:
        """As RFC 9110 says each of these carries."""
        assert shaped().headers_for(status, ALLOW) == [needed]

    def test_retry_after_takes_its_seconds(self) -> None:
        """retry_after= sets the wait, on any status it is given with."""
        assert shaped("retry_after=120").headers_for(503, ALLOW) == [("retry-after", "120")]
        assert shaped("retry_after=5").headers_for(301, ALLOW) == [("retry-after", "5")]

    def test_the_request_may_set_them_itself(self) -> None:
        """A header of the same name given with header= replaces echod's."""
        given = shaped(header("WWW-Authenticate: Bearer"))
        assert given.headers_for(401, ALLOW) == [("www-authenticate", "Bearer")]

    def test_other_statuses_need_nothing(self) -> None:
        """200, 404 and 500 get no header of their own."""
        for status in (200, 404, 500):
            assert shaped().headers_for(status, ALLOW) == []

    @pytest.mark.parametrize("status", [300, 301, 302, 303, 307, 308])
    def test_a_redirection_needs_a_location(self, status: int) -> None:
        """A 3xx other than 304 without location= is refused, naming location."""
        with pytest.raises(BadRequest, match="location"):
            shaped().check([200, status])
        given = shaped("location=/elsewhere")
        given.check([status])
        assert given.headers_for(status, ALLOW) == [("location", "/elsewhere")]

    def test_a_304_needs_no_location(self) -> None:
        """Not Modified points nowhere."""
        shaped().check([304])

    def test_a_location_given_as_a_header_will_do(self) -> None:
        """header=Location:... counts as the location."""
        shaped(header("Location: https://example.com/")).check([302])

    @pytest.mark.parametrize("value", ["", "a b", "x" * 2049, "caf%C3%A9"])
    def test_a_bad_location_is_refused(self, value: str) -> None:
        """A location is 1 to 2,048 visible ASCII characters."""
        assert "location" in refused("location=" + value)

    @pytest.mark.parametrize("value", ["-1", "86401", "1.5"])
    def test_a_bad_wait_is_refused(self, value: str) -> None:
        """retry_after= is a whole number of seconds up to a day."""
        assert "retry_after" in refused("retry_after=" + value)
