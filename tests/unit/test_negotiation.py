"""Negotiation: the coding of an answer, from Accept-Encoding (RFC 9110 12.5.3) and encoding=."""

from __future__ import annotations

import pytest

from echod.http.controls import Controls
from echod.http.negotiation import MIN_SIZE, choose, forced
from echod.http.problems import BadRequest, NotAcceptable
from tests.support.harness import FakeHeaders, FakeScope

BIG = MIN_SIZE


class TestChoose:
    @pytest.mark.parametrize(
        ("accept", "coding"),
        [
            pytest.param(None, None, id="no-header"),
            pytest.param("", None, id="empty-header"),
            pytest.param("gzip", "gzip", id="gzip"),
            pytest.param("gzip, deflate, br, zstd", "zstd", id="browser"),
            pytest.param("gzip, deflate, br", "br", id="httpx"),
            pytest.param("deflate", "deflate", id="deflate"),
            pytest.param("GZIP", "gzip", id="case-insensitive"),
            pytest.param("gzip;q=0.5, br;q=0.9", "br", id="q-values"),
            pytest.param("gzip;q=1, zstd;q=0.999", "gzip", id="three-decimals"),
            pytest.param("gzip ; q=0.2 , deflate", "deflate", id="spaces"),
            pytest.param("br;q=0, gzip", "gzip", id="refused-coding"),
            pytest.param("*", "zstd", id="any"),
            pytest.param("*;q=0.5, gzip", "gzip", id="listed-beats-any"),
            pytest.param("gzip;q=0.5, identity", None, id="identity-preferred"),
            pytest.param("gzip;q=0.5, identity;q=0.5", "gzip", id="tie-goes-to-the-coding"),
            pytest.param("compress, x-gzip", None, id="unknown-codings"),
            pytest.param("gzip;q=2", None, id="bad-q-left-out"),
            pytest.param("gzip;q=abc, br", "br", id="bad-q-others-kept"),
        ],
    )
    def test_the_coding_the_client_prefers(self, accept: str | None, coding: str | None) -> None:
        """Highest q first, then echod's order: zstd, br, gzip, deflate."""
        assert choose(accept, BIG) == coding

    def test_small_answers_stay_identity(self) -> None:
        """Under 256 bytes an answer is not worth encoding."""
        assert choose("gzip", MIN_SIZE - 1) is None
        assert choose("gzip", MIN_SIZE) == "gzip"

    def test_a_stream_of_unknown_size_is_encoded(self) -> None:
        """A size of None is a stream: encoded when asked."""
        assert choose("gzip", None) == "gzip"

    @pytest.mark.parametrize("accept", ["identity;q=0, gzip", "*;q=0, gzip"])
    def test_identity_refused_means_encoded_even_when_small(self, accept: str) -> None:
        """Rather than a 406, a small answer is encoded in a coding the client takes."""
        assert choose(accept, 10) == "gzip"

    @pytest.mark.parametrize(
        "accept", ["identity;q=0", "*;q=0", "identity;q=0, compress", "*;q=0, gzip;q=0"]
    )
    def test_nothing_acceptable_is_406(self, accept: str) -> None:
        """Identity refused and no coding echod writes taken."""
        with pytest.raises(NotAcceptable) as caught:
            choose(accept, BIG)
        assert caught.value.status == 406

    def test_any_refused_but_identity_listed(self) -> None:
        """*;q=0 with identity listed leaves identity acceptable."""
        assert choose("*;q=0, identity", BIG) is None

    @pytest.mark.parametrize("force", ["gzip", "deflate", "br", "zstd"])
    def test_a_forced_coding_wins_over_everything(self, force: str) -> None:
        """encoding= forces the coding whatever the size and Accept-Encoding."""
        assert choose(None, 1, force) == force
        assert choose("identity", 1, force) == force

    def test_forced_identity_is_never_406(self) -> None:
        """encoding=identity sends identity even to identity;q=0."""
        assert choose("identity;q=0", BIG, "identity") is None

    def test_a_long_field_is_parsed_without_being_remembered(self) -> None:
        """A field over 128 characters is parsed each time; the answer is the same."""
        accept = "x-custom;q=0.1, " * 20 + "gzip"
        assert choose(accept, BIG) == "gzip"


class TestForced:
    def test_absent_is_none(self) -> None:
        """No encoding= and no X-Echod-Encoding."""
        assert forced(Controls(FakeScope(query_string=""))) is None  # type: ignore[arg-type]

    def test_query_and_header(self) -> None:
        """Either form names the coding; the query wins."""
        assert forced(Controls(FakeScope(query_string="encoding=br"))) == "br"  # type: ignore[arg-type]
        headers = FakeHeaders({"x-echod-encoding": "identity"})
        assert forced(Controls(FakeScope(headers=headers))) == "identity"  # type: ignore[arg-type]

    @pytest.mark.parametrize("value", ["x-gzip", "GZIP", "compress", "", "gzip,br"])
    def test_anything_else_is_a_400_naming_encoding(self, value: str) -> None:
        """Exactly one of gzip, deflate, br, zstd and identity."""
        with pytest.raises(BadRequest, match="encoding"):
            forced(Controls(FakeScope(query_string=f"encoding={value}")))  # type: ignore[arg-type]
