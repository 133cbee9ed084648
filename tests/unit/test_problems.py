"""Problems: the headers and details each kind of refusal carries."""

from __future__ import annotations

import pytest

from echod.http.problems import RangeNotSatisfiable, UnsupportedMediaType, bearer_challenge

PREFIX = 'Bearer realm="echod", error="invalid_token", error_description='


class TestBearerChallenge:
    def test_a_plain_reason_is_the_description(self) -> None:
        """Printable ASCII passes as it is."""
        assert bearer_challenge("the token has expired") == (
            "www-authenticate",
            PREFIX + '"the token has expired"',
        )

    @pytest.mark.parametrize(
        ("reason", "description"),
        [
            pytest.param('say "hi" now', "say hi now", id="quotes"),
            pytest.param("a\\b\\\\c", "abc", id="backslashes"),
            pytest.param("tab\there\x01\x7f", "tabhere", id="control-characters"),
            pytest.param("caf\u00e9 \u2603 ok", "caf  ok", id="non-ascii"),
        ],
    )
    def test_what_a_quoted_string_cannot_hold_is_dropped(
        self, reason: str, description: str
    ) -> None:
        """RFC 6750 section 3: error_description holds printable ASCII, no quote or backslash."""
        assert bearer_challenge(reason)[1] == f'{PREFIX}"{description}"'


class TestRangeNotSatisfiable:
    def test_the_detail_and_the_size(self) -> None:
        """The detail is the one given; Content-Range gives the size of the whole."""
        problem = RangeNotSatisfiable("no byte of bytes=500- exists", 100)
        assert (problem.status, problem.detail, str(problem)) == (
            416,
            "no byte of bytes=500- exists",
            "no byte of bytes=500- exists",
        )
        assert problem.headers == (("content-range", "bytes */100"),)


class TestUnsupportedMediaType:
    def test_the_codings_accepted_are_sent_in_accept_encoding(self) -> None:
        """RFC 9110 section 15.5.16: the 415 may say which codings would do."""
        problem = UnsupportedMediaType("not this one", "gzip, br")
        assert (problem.status, problem.detail) == (415, "not this one")
        assert problem.headers == (("accept-encoding", "gzip, br"),)

    def test_without_them_no_header(self) -> None:
        """A 415 about something other than a coding has no Accept-Encoding."""
        assert UnsupportedMediaType("not this one").headers == ()
