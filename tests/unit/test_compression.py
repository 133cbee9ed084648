"""Compressed answers and compressed request bodies, through the app in this process."""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from typing import TYPE_CHECKING

import brotli  # type: ignore[import-untyped]
import pytest
from backports import zstd

if TYPE_CHECKING:
    from tests.support.harness import Harness, MakeHarness

BIG = json.dumps({f"key{n}": "value" * 5 for n in range(20)}).encode()
DECODE = {
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
    "br": brotli.decompress,
    "zstd": zstd.decompress,
}
ENCODE = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": zstd.compress,
}


def coding_count(harness: Harness, direction: str, coding: str) -> float | None:
    """One echod_content_codings_total sample."""
    labels = {"direction": direction, "coding": coding}
    return harness.registry.get_sample_value("echod_content_codings_total", labels)


class TestEchoAnswers:
    @pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
    def test_a_big_echo_is_sent_in_the_coding_asked_for(
        self, harness: Harness, coding: str
    ) -> None:
        """Content-Encoding names it, and the body decodes to the echo."""
        answer = harness.authed(body=BIG, **{"accept-encoding": coding}).response
        assert answer.header("content-encoding") == coding
        assert answer.header("vary") == "accept-encoding"
        assert json.loads(DECODE[coding](answer.body))["echoed"] is True
        assert coding_count(harness, "encoded", coding) == 1.0

    def test_a_small_echo_stays_identity(self, harness: Harness) -> None:
        """Under 256 bytes, even when gzip is asked for; Vary still says it could change."""
        answer = harness.authed(body=b'{"a": 1}', **{"accept-encoding": "gzip"}).response
        assert "content-encoding" not in answer.headers
        assert answer.header("vary") == "accept-encoding"
        assert answer.body == b'{"a":1,"echoed":true}\n'

    def test_without_accept_encoding_the_echo_is_identity_with_vary(self, harness: Harness) -> None:
        """The common case: no coding, but the answer says it depends on Accept-Encoding."""
        answer = harness.authed(body=BIG).response
        assert "content-encoding" not in answer.headers
        assert answer.header("vary") == "accept-encoding"

    def test_encoding_forces_a_coding_on_a_small_echo(self, harness: Harness) -> None:
        """?encoding=br, or X-Echod-Encoding, whatever the size."""
        answer = harness.authed(path="/api/echo?encoding=br", body=b"{}").response
        assert answer.header("content-encoding") == "br"
        assert brotli.decompress(answer.body) == b'{"echoed":true}\n'
        answer = harness.authed(body=b"{}", **{"x-echod-encoding": "zstd"}).response
        assert zstd.decompress(answer.body) == b'{"echoed":true}\n'

    def test_a_bad_forced_coding_is_a_400(self, harness: Harness) -> None:
        """encoding= names one of the codings, or identity."""
        answer = harness.authed(path="/api/echo?encoding=lzma", body=b"{}").response
        assert answer.status == 400
        assert "encoding" in json.loads(answer.body)["detail"]

    def test_nothing_acceptable_is_406(self, harness: Harness) -> None:
        """identity;q=0 and no coding echod writes: a 406 problem, in identity."""
        answer = harness.authed(body=BIG, **{"accept-encoding": "identity;q=0, x-lzma"}).response
        assert answer.status == 406
        assert answer.header("content-type") == "application/problem+json"
        assert "content-encoding" not in answer.headers

    def test_the_raw_echo_is_never_encoded(self, harness: Harness) -> None:
        """/api/raw sends the body as it came."""
        answer = harness.authed(path="/api/raw", body=BIG, **{"accept-encoding": "gzip"}).response
        assert answer.body == BIG
        assert "vary" not in answer.headers


class TestInspectAnswers:
    def test_the_report_is_encoded_when_asked(self, harness: Harness) -> None:
        """A report is over 256 bytes: gzip is used."""
        answer = harness.authed("GET", "/api/inspect", b"", **{"accept-encoding": "gzip"}).response
        assert answer.header("content-encoding") == "gzip"
        assert json.loads(gzip.decompress(answer.body))["method"] == "GET"

    def test_head_carries_the_encoded_length(self, harness: Harness) -> None:
        """HEAD says what GET would: the coding and the encoded length."""
        get = harness.authed(
            "GET", "/api/inspect?body=" + "a" * 300, b"", **{"accept-encoding": "br"}
        )
        head = harness.authed(
            "HEAD", "/api/inspect?body=" + "a" * 300, b"", **{"accept-encoding": "br"}
        )
        assert head.response.header("content-encoding") == "br"
        assert head.response.header("content-length") == str(len(get.response.body))

    def test_a_content_encoding_set_by_the_request_turns_encoding_off(
        self, harness: Harness
    ) -> None:
        """header=Content-Encoding:gzip sends body= as given, under that claim."""
        answer = harness.authed(
            "GET",
            "/api/inspect?body=" + "x" * 300 + "&header=Content-Encoding%3Agzip",
            b"",
            **{"accept-encoding": "br"},
        ).response
        assert answer.body == b"x" * 300
        assert answer.header("content-encoding") == "gzip"
        assert "vary" not in answer.headers

    def test_no_body_no_coding(self, harness: Harness) -> None:
        """A 204 has no body to encode."""
        answer = harness.authed(
            "GET", "/api/inspect?status=204", b"", **{"accept-encoding": "gzip"}
        ).response
        assert (answer.status, answer.body) == (204, b"")
        assert "content-encoding" not in answer.headers


class TestRequestBodies:
    @pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
    def test_an_encoded_body_is_echoed_decoded(self, harness: Harness, coding: str) -> None:
        """The echo reads the object inside, and the decoding is counted."""
        body = ENCODE[coding](b'{"a": 1}')
        answer = harness.authed(body=body, **{"content-encoding": coding}).response
        assert (answer.status, answer.body) == (200, b'{"a":1,"echoed":true}\n')
        assert coding_count(harness, "decoded", coding) == 1.0

    def test_a_list_of_codings_is_undone_last_first(self, harness: Harness) -> None:
        """Content-Encoding: gzip, br was gzip first, then br."""
        body = brotli.compress(gzip.compress(b"raw bytes"))
        answer = harness.authed(
            path="/api/raw", body=body, **{"content-encoding": "gzip, br"}
        ).response
        assert answer.body == b"raw bytes"

    def test_the_report_shows_the_body_as_sent_and_as_decoded(self, harness: Harness) -> None:
        """bytes and sha256 of both, and the codings."""
        sent = gzip.compress("héllo".encode())
        answer = harness.authed(
            "POST", "/api/inspect", sent, **{"content-encoding": "gzip"}
        ).response
        body = json.loads(answer.body)["body"]
        assert body["text"] == "héllo"
        assert body["bytes"] == 6
        assert body["sha256"] == hashlib.sha256("héllo".encode()).hexdigest()
        assert body["received"] == {
            "contentEncoding": ["gzip"],
            "bytes": len(sent),
            "sha256": hashlib.sha256(sent).hexdigest(),
        }

    def test_an_unencoded_body_is_received_as_it_is(self, harness: Harness) -> None:
        """received repeats the body's figures, with no coding."""
        answer = harness.authed("POST", "/api/inspect", b"abc").response
        body = json.loads(answer.body)["body"]
        assert body["received"] == {
            "contentEncoding": [],
            "bytes": 3,
            "sha256": hashlib.sha256(b"abc").hexdigest(),
        }

    def test_the_limit_applies_to_the_decoded_body(self, make_harness: MakeHarness) -> None:
        """A 1,000-byte limit: a small gzip of 2,000 bytes is a 413."""
        small = make_harness(max_body_bytes=1000)
        body = gzip.compress(b" " * 2000)
        answer = small.authed(body=body, **{"content-encoding": "gzip"}).response
        assert answer.status == 413

    def test_no_bytes_are_an_empty_body_in_any_coding(self, harness: Harness) -> None:
        """A GET that says gzip but sends nothing has an empty body, not a broken stream."""
        answer = harness.authed("GET", "/api/inspect", b"", **{"content-encoding": "gzip"}).response
        assert answer.status == 200
        assert json.loads(answer.body)["body"]["received"]["contentEncoding"] == ["gzip"]

    def test_identity_in_the_list_is_no_coding(self, harness: Harness) -> None:
        """identity, gzip is gzip."""
        body = gzip.compress(b"{}")
        answer = harness.authed(body=body, **{"content-encoding": "identity, gzip"}).response
        assert answer.status == 200

    def test_more_than_four_codings_are_a_415(self, harness: Harness) -> None:
        """Each layer costs a pass over the body: echod undoes at most four."""
        answer = harness.authed(
            body=b"x", **{"content-encoding": "gzip, gzip, gzip, gzip, gzip"}
        ).response
        assert answer.status == 415
        assert answer.header("accept-encoding") == "gzip, deflate, br, zstd"
