"""The bad-input corpus: each hostile or malformed request, and the status it must get.

Every case goes to a real echod over a raw socket, so nothing in between tidies it up.
Answers from echod itself are problem+json and are logged once; requests that HTTP/1.1
forbids outright (control characters in a header, a space in the path, a malformed
Content-Length) are refused by the server library with an empty 400 before echod sees
them, so they are neither logged nor counted.
"""

from __future__ import annotations

import base64
import json
import random
import re
import socket
import string
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from echod.http.payload import pieces
from tests.support.bombs import CODINGS, bomb, encode
from tests.support.patterns import UUID4
from tests.support.processes import Echod, raw_exchange
from tests.support.tokens import (
    SigningKey,
    b64url,
    claims,
    hand_made,
    hs256_with_public_key,
    key_set,
    unsigned,
)
from tests.support.users import AUTH, AUTH_HEADER

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

CRLF = b"\r\n"


def request(
    body: bytes = b"{}",
    *,
    path: bytes = b"/api/echo",
    method: bytes = b"POST",
    headers: tuple[bytes, ...] = (),
    authorization: bytes | None = AUTH_HEADER.encode(),
    version: bytes = b"HTTP/1.1",
) -> bytes:
    """One request with a Content-Length, closing the connection after the answer."""
    lines = [method + b" " + path + b" " + version, b"Host: echod", b"Connection: close"]
    if authorization is not None:
        lines.append(b"Authorization: " + authorization)
    lines += [*headers, b"Content-Length: " + str(len(body)).encode()]
    return CRLF.join(lines) + CRLF + CRLF + body


def inspect(
    query: bytes, *, path: bytes = b"/api/inspect", headers: tuple[bytes, ...] = ()
) -> bytes:
    """A GET of ``path`` with ``query``, no body, and the demo user's credentials."""
    target = path + (b"?" + query if query else b"")
    return request(b"", method=b"GET", path=target, headers=headers)


def payload(size: int) -> bytes:
    """What /api/bytes/size sends."""
    return b"".join(pieces(0, 0, size))


def basic(raw: bytes) -> bytes:
    """An Authorization header value carrying ``raw`` as Basic credentials."""
    return b"Basic " + base64.b64encode(raw)


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body of the first answer in ``raw``."""
    head, _, body = raw.partition(CRLF + CRLF)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def encoded(coding: str, body: bytes, *, path: bytes = b"/api/echo") -> bytes:
    """A POST of ``body`` in ``coding``, with its Content-Encoding."""
    return request(encode(coding, body), path=path,
                   headers=(b"Content-Encoding: " + coding.encode(),))  # fmt: skip


def _coding_cases() -> list[tuple[str, bytes, int, bool, bytes | None]]:
    """Each coding: a good body, a bomb of 100 MiB, a truncated and a corrupt stream."""
    cases: list[tuple[str, bytes, int, bool, bytes | None]] = []
    for coding in CODINGS:
        good = encode(coding, b'{"a": 1}')
        cases += [
            (f"{coding}-body-echoed", encoded(coding, b'{"a": 1}'), 200, True,
             b'{"a":1,"echoed":true}\n'),
            (f"{coding}-bomb-of-100-mib", request(bomb(coding, 100),
             headers=(b"Content-Encoding: " + coding.encode(),)), 413, True, None),
            (f"{coding}-truncated", request(good[: len(good) // 2],
             headers=(b"Content-Encoding: " + coding.encode(),)), 400, True, None),
            (f"{coding}-corrupt", request(b"\x00not " + coding.encode() + b" at all\xff" * 4,
             headers=(b"Content-Encoding: " + coding.encode(),)), 400, True, None),
            (f"{coding}-garbage-after-the-end", request(good + b"trailing",
             headers=(b"Content-Encoding: " + coding.encode(),)), 400, True, None),
        ]  # fmt: skip
    return cases


CODING_CASES: list[tuple[str, bytes, int, bool, bytes | None]] = [
    *_coding_cases(),
    ("gzip-then-br-raw", request(encode("br", encode("gzip", b"x")), path=b"/api/raw",
     headers=(b"Content-Encoding: gzip, br",)), 200, True, b"x"),
    ("five-codings", request(b"x", headers=(b"Content-Encoding: gzip, gzip, gzip, gzip, gzip",)),
     415, True, None),
    ("unknown-coding", request(b"x", headers=(b"Content-Encoding: x-lzma",)), 415, True, None),
    ("coding-list-with-unknown", request(b"x", headers=(b"Content-Encoding: gzip, lzw",)), 415,
     True, None),
    ("identity-refused-nothing-taken", request(b"{}", headers=(b"Accept-Encoding: identity;q=0",)),
     406, True, None),
    ("encoding-forced-unknown", request(path=b"/api/echo?encoding=lzma"), 400, True, None),
    ("encoding-forced-upper-case", request(path=b"/api/echo?encoding=GZIP"), 400, True, None),
]  # fmt: skip

SHAPING_CASES: list[tuple[str, bytes, int, bool, bytes | None]] = [
    *[(f"header-{name.lower()}", inspect(b"header=" + name.encode() + b"%3Ax"), 400, True, None)
      for name in ("Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade",
                   "TE", "Trailer", "Proxy-Authenticate", "Content-Type", "X-Request-ID")],
    ("header-21", inspect(b"&".join(b"header=X-%d%%3Av" % n for n in range(21))), 400, True, None),
    ("header-20", inspect(b"&".join(b"header=X-%d%%3Av" % n for n in range(20))), 200, True, None),
    ("header-over-8-kib", inspect(b"header=X-A%3A" + b"v" * 8200), 400, True, None),
    ("header-name-with-space", inspect(b"header=X%20A%3Av"), 400, True, None),
    ("header-without-colon", inspect(b"header=X-A"), 400, True, None),
    ("header-value-not-ascii", inspect(b"header=X-A%3A%C3%A9"), 400, True, None),
    ("header-value-with-cr", inspect(b"header=X-A%3Aa%0Db"), 400, True, None),
    ("header-value-with-lf", inspect(b"header=X-A%3Aa%0ASet-Cookie%3A%20x"), 400, True, None),
    ("header-form-refused", inspect(b"", headers=(b"X-Echod-Header: Connection: close",)), 400,
     True, None),
    ("body-of-12k", inspect(b"body=" + b"b" * 12_000), 200, True, b"b" * 12_000),
    ("body-not-utf8", inspect(b"body=%FF"), 400, True, None),
    ("content-type-without-subtype", inspect(b"body=x&content_type=text"), 400, True, None),
    ("content-type-with-nul", inspect(b"content_type=text%2Fplain%00"), 400, True, None),
    ("redirect-without-location", inspect(b"status=302"), 400, True, None),
    ("redirect-with-location", inspect(b"status=302&location=%2Fthere"), 302, True, None),
    ("location-with-space", inspect(b"status=302&location=%2Fa%20b"), 400, True, None),
    ("location-over-2048", inspect(b"status=302&location=" + b"x" * 2049), 400, True, None),
    ("retry-after-negative", inspect(b"status=503&retry_after=-1"), 400, True, None),
    ("retry-after-over-a-day", inspect(b"status=503&retry_after=86401"), 400, True, None),
]  # fmt: skip

FAULT_CASES: list[tuple[str, bytes, int, bool, bytes | None]] = [
    ("weighted-eleven-entries", inspect(b"status=" + b",".join([b"200"] * 11)), 400, True, None),
    ("weighted-all-zero", inspect(b"status=200%3A0%2C503%3A0"), 400, True, None),
    ("weighted-weight-over-bound", inspect(b"status=200%3A1000001"), 400, True, None),
    ("weighted-status-out-of-bounds", inspect(b"status=200%3A1%2C600%3A1"), 400, True, None),
    ("weighted-empty-entry", inspect(b"status=200%2C%2C503"), 400, True, None),
    ("weighted-fraction", inspect(b"status=200%3A0.5"), 400, True, None),
    ("weighted-repeatable", inspect(b"status=200%3A1%2C418%3A0&seed=1"), 200, True, None),
    ("delay-range-reversed", inspect(b"delay_ms=500-100"), 400, True, None),
    ("delay-range-over-max", inspect(b"delay_ms=0-10001"), 400, True, None),
    ("delay-range-three-parts", inspect(b"delay_ms=1-2-3"), 400, True, None),
    ("seed-over-bound", inspect(b"seed=1000000000"), 400, True, None),
    ("seed-negative", inspect(b"seed=-1"), 400, True, None),
    ("seed-header-bad", inspect(b"", headers=(b"X-Echod-Seed: x",)), 400, True, None),
]  # fmt: skip

DOWNLOAD_CASES: list[tuple[str, bytes, int, bool, bytes | None]] = [
    ("bytes-n-not-digits", inspect(b"", path=b"/api/bytes/abc"), 400, True, None),
    ("bytes-n-negative", inspect(b"", path=b"/api/bytes/-1"), 400, True, None),
    ("bytes-n-over-max", inspect(b"", path=b"/api/bytes/104857601"), 400, True, None),
    ("bytes-n-of-20-digits", inspect(b"", path=b"/api/bytes/" + b"9" * 20), 400, True, None),
    ("bytes-n-hex", inspect(b"", path=b"/api/bytes/0x10"), 400, True, None),
    ("bytes-n-empty", inspect(b"", path=b"/api/bytes/"), 404, True, None),
    ("bytes-subpath", inspect(b"", path=b"/api/bytes/1/2"), 404, True, None),
    ("bytes-seed-bad", inspect(b"seed=abc", path=b"/api/bytes/10"), 400, True, None),
    ("bytes-zero", inspect(b"", path=b"/api/bytes/0"), 200, True, b""),
    ("bytes-range-past-the-end", inspect(b"", path=b"/api/bytes/10",
     headers=(b"Range: bytes=10-",)), 416, True, None),
    ("bytes-range-of-nothing", inspect(b"", path=b"/api/bytes/0",
     headers=(b"Range: bytes=0-",)), 416, True, None),
    ("bytes-range-empty-suffix", inspect(b"", path=b"/api/bytes/10",
     headers=(b"Range: bytes=-0",)), 416, True, None),
    ("bytes-several-ranges", inspect(b"", path=b"/api/bytes/4",
     headers=(b"Range: bytes=0-0,2-3",)), 200, True, payload(4)),
    ("bytes-range-malformed", inspect(b"", path=b"/api/bytes/4",
     headers=(b"Range: bytes=3-1",)), 200, True, payload(4)),
    ("bytes-range-other-unit", inspect(b"", path=b"/api/bytes/4",
     headers=(b"Range: items=0-1",)), 200, True, payload(4)),
    ("bytes-range-huge-numbers", inspect(b"", path=b"/api/bytes/4",
     headers=(b"Range: bytes=" + b"9" * 40 + b"-",)), 200, True, payload(4)),
    ("bytes-one-range", inspect(b"", path=b"/api/bytes/4",
     headers=(b"Range: bytes=1-2",)), 206, True, payload(4)[1:3]),
    ("bytes-not-modified", inspect(b"", path=b"/api/bytes/4",
     headers=(b'If-None-Match: "bytes-4-0"',)), 304, True, b""),
    ("bytes-post", request(path=b"/api/bytes/4"), 405, True, None),
]  # fmt: skip

DRIP_CASES: list[tuple[str, bytes, int, bool, bytes | None]] = [
    ("drip-zero-bytes", inspect(b"bytes=0", path=b"/api/drip"), 400, True, None),
    ("drip-bytes-over-10-mib", inspect(b"bytes=10485761", path=b"/api/drip"), 400, True, None),
    ("drip-zero-chunks", inspect(b"chunks=0", path=b"/api/drip"), 400, True, None),
    ("drip-chunks-over-10000", inspect(b"bytes=20000&chunks=10001", path=b"/api/drip"), 400, True,
     None),
    ("drip-more-chunks-than-bytes", inspect(b"bytes=3&chunks=4", path=b"/api/drip"), 400, True,
     None),
    ("drip-duration-over-max", inspect(b"duration_ms=10001", path=b"/api/drip"), 400, True, None),
    ("drip-delay-and-duration-too-long", inspect(b"delay_ms=6000&duration_ms=5000",
     path=b"/api/drip"), 400, True, None),
    ("drip-header-bytes-bad", inspect(b"", path=b"/api/drip", headers=(b"X-Echod-Bytes: 1e3",)),
     400, True, None),
    ("drip-quick", inspect(b"bytes=3&duration_ms=0", path=b"/api/drip"), 200, True, None),
    ("drip-post", request(path=b"/api/drip"), 405, True, None),
]  # fmt: skip

# The scenarios: bad keys, rules, ttls, rates and bursts, and the attempt log. Each key is
# the case's own, so that the cases do not depend on one another's order.
SCENARIO_CASES: list[tuple[str, bytes, int, bool, bytes | None]] = [
    ("key-empty", inspect(b"key="), 400, True, None),
    ("key-with-space", inspect(b"key=a%20b"), 400, True, None),
    ("key-with-slash", inspect(b"key=a%2Fb"), 400, True, None),
    ("key-not-ascii", inspect(b"key=%C3%A9"), 400, True, None),
    ("key-with-nul", inspect(b"key=a%00"), 400, True, None),
    ("key-of-129", inspect(b"key=" + b"k" * 129), 400, True, None),
    ("key-of-128", inspect(b"key=" + b"k" * 128), 200, True, None),
    ("key-of-10-kb", inspect(b"key=" + b"k" * 10_000), 400, True, None),
    ("key-given-twice", inspect(b"key=a&key=b"), 400, True, None),
    ("key-header-bad", inspect(b"", headers=(b"X-Echod-Key: a b",)), 400, True, None),
    ("fail-over-100", inspect(b"key=c1&fail=101"), 400, True, None),
    ("fail-negative", inspect(b"key=c2&fail=-1"), 400, True, None),
    ("fail-fraction", inspect(b"key=c3&fail=1.5"), 400, True, None),
    ("fail-zero", inspect(b"key=c4&fail=0"), 200, True, None),
    ("fail-without-key", inspect(b"fail=1"), 400, True, None),
    ("fail-and-fail-every", inspect(b"key=c5&fail=1&fail_every=2"), 400, True, None),
    ("fail-every-zero", inspect(b"key=c6&fail_every=0"), 400, True, None),
    ("ttl-zero", inspect(b"key=c7&ttl=0"), 400, True, None),
    ("ttl-over-a-day", inspect(b"key=c8&ttl=86401"), 400, True, None),
    ("ttl-huge", inspect(b"key=c9&ttl=" + b"9" * 400), 400, True, None),
    ("ttl-exponent", inspect(b"key=c10&ttl=1e9"), 400, True, None),
    ("ttl-without-key", inspect(b"ttl=60"), 400, True, None),
    ("rate-zero-per-second", inspect(b"rate=0%2Fs"), 400, True, None),
    ("rate-1e9-per-second", inspect(b"rate=1e9%2Fs"), 400, True, None),
    ("rate-a-billion-per-second", inspect(b"rate=1000000000%2Fs"), 400, True, None),
    ("rate-over-a-million", inspect(b"rate=1000001%2Fs"), 400, True, None),
    ("rate-negative", inspect(b"rate=-5%2Fs"), 400, True, None),
    ("rate-fraction", inspect(b"rate=0.5%2Fs"), 400, True, None),
    ("rate-without-unit", inspect(b"rate=10"), 400, True, None),
    ("rate-per-day", inspect(b"rate=10%2Fd"), 400, True, None),
    ("rate-header-bad", inspect(b"", headers=(b"X-Echod-Rate: fast",)), 400, True, None),
    ("burst-without-rate", inspect(b"burst=10"), 400, True, None),
    ("burst-zero", inspect(b"rate=10%2Fs&burst=0"), 400, True, None),
    ("burst-over-a-million", inspect(b"rate=10%2Fs&burst=1000001"), 400, True, None),
    ("rate-and-burst-good", inspect(b"key=c11&rate=10%2Fs&burst=5"), 200, True, None),
    ("attempts-unknown-key", inspect(b"", path=b"/api/attempts/never-seen"), 404, True, None),
    ("attempts-delete-unknown-key", inspect(b"", path=b"/api/attempts/never-seen").replace(
     b"GET ", b"DELETE ", 1), 404, True, None),
    ("attempts-bad-key", inspect(b"", path=b"/api/attempts/a%20b"), 400, True, None),
    ("attempts-key-of-129", inspect(b"", path=b"/api/attempts/" + b"k" * 129), 400, True, None),
    ("attempts-empty-key", inspect(b"", path=b"/api/attempts/"), 404, True, None),
    ("attempts-subpath", inspect(b"", path=b"/api/attempts/a/b"), 404, True, None),
    ("attempts-post", request(path=b"/api/attempts/k"), 405, True, None),
]  # fmt: skip

# (id, raw request, expected status, whether echod answers it (problem+json, logged), body)
CORPUS: list[tuple[str, bytes, int, bool, bytes | None]] = [
    # Bodies
    ("empty-body", request(b""), 400, True, None),
    ("nesting-10000", request(b'{"a":' + b"[" * 10_000 + b"]" * 10_000 + b"}"), 400, True, None),
    ("invalid-utf8", request(b'{"a": "\xff\xfe"}'), 400, True, None),
    ("utf8-encoded-surrogate", request(b'{"a": "\xed\xa0\x80"}'), 400, True, None),
    ("lone-surrogate-escape", request(b'{"a": "\\ud800"}'), 400, True, None),
    ("raw-nul-in-string", request(b'{"a": "x\x00y"}'), 400, True, None),
    ("nul-after-object", request(b'{"a": 1}\x00'), 400, True, None),
    ("escaped-nul", request(b'{"a": "x\\u0000y"}'), 200, True,
     b'{"a":"x\\u0000y","echoed":true}\n'),
    ("400-digit-integer", request(b'{"n": ' + b"7" * 400 + b"}"), 200, True,
     b'{"n":' + b"7" * 400 + b',"echoed":true}\n'),
    ("400-digit-fraction", request(b'{"n": 0.' + b"3" * 400 + b"}"), 200, True,
     b'{"n":0.' + b"3" * 400 + b',"echoed":true}\n'),
    ("1e400", request(b'{"n": 1e400}'), 200, True, b'{"n":1E+400,"echoed":true}\n'),
    ("nan", request(b'{"n": NaN}'), 400, True, None),
    ("infinity", request(b'{"n": Infinity}'), 400, True, None),
    ("minus-infinity", request(b'{"n": -Infinity}'), 400, True, None),
    ("duplicate-keys-last-wins", request(b'{"a": 1, "b": 2, "a": 3}'), 200, True,
     b'{"a":3,"b":2,"echoed":true}\n'),
    ("top-level-array", request(b"[]"), 400, True, None),
    ("gzip-truncated-header", request(b"\x1f\x8b\x08\x00", headers=(b"Content-Encoding: gzip",)),
     400, True, None),
    # HTTP framing
    ("http-1.0-without-host", CRLF.join([b"POST /api/echo HTTP/1.0", b"Authorization: "
     + AUTH_HEADER.encode(), b"Content-Length: 2", b"", b"{}"]), 200, True, b'{"echoed":true}\n'),
    ("http-1.1-without-host", CRLF.join([b"POST /api/echo HTTP/1.1", b"Connection: close",
     b"Authorization: " + AUTH_HEADER.encode(), b"Content-Length: 2", b"", b"{}"]), 400, True,
     None),
    ("http-1.1-probe-without-host", CRLF.join([b"GET /health HTTP/1.1", b"Connection: close",
     b"", b""]), 400, True, None),
    ("malformed-content-length", request(headers=(b"Content-Length: 2x",)).replace(
        b"Content-Length: 2\r\n\r\n", b"\r\n"), 400, False, None),
    ("two-content-lengths", request(headers=(b"Content-Length: 3",)), 400, False, None),
    # RFC 9110 section 8.6 lets a repeated, identical Content-Length stand as one
    ("two-equal-content-lengths", request(headers=(b"Content-Length: 2",)), 200, True,
     b'{"echoed":true}\n'),
    ("http-0.9", b"GET /health" + CRLF + CRLF, 400, False, None),
    ("tls-handshake-on-http-port", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + CRLF * 2,
     400, False, None),
    # Methods and paths
    ("get-echo", request(method=b"GET"), 405, True, None),
    ("delete-echo", request(method=b"DELETE"), 405, True, None),
    ("lowercase-post", request(method=b"post"), 405, True, None),
    ("post-health", request(path=b"/health"), 405, True, None),
    ("dot-dot", request(path=b"/api/../api/echo"), 404, True, None),
    ("trailing-dot-dot", request(path=b"/api/echo/.."), 404, True, None),
    ("percent-00", request(path=b"/api/echo%00"), 404, True, None),
    # granian decodes the path, %2F included, before echod routes: a proxy in front must
    # refuse an encoded slash itself (docs/proxies.md; docs/upstream.md, report 9)
    ("encoded-slash-is-a-slash", request(path=b"/api%2Fecho"), 200, True,
     b'{"echoed":true}\n'),
    ("encoded-letter-is-the-letter", request(path=b"/api/%65cho"), 200, True,
     b'{"echoed":true}\n'),
    ("raw-nul-in-path", request(path=b"/api/echo\x00"), 400, False, None),
    ("space-in-path", request(path=b"/api/e cho"), 400, False, None),
    ("segment-of-10k", request(path=b"/" + b"a" * 10_000), 404, True, None),
    ("segment-over-the-head-limit", request(path=b"/" + b"a" * 20_000), 431, False, None),
    ("query-is-ignored", request(path=b"/api/echo?x=%00&y=1"), 200, True, b'{"echoed":true}\n'),
    # Headers
    ("header-over-the-limit", request(headers=(b"X-Big: " + b"a" * 20_000,)), 431, False, None),
    ("request-id-with-crlf", request(headers=(b"X-Request-ID: a\r\n b",)), 400, False, None),
    ("request-id-with-bare-lf", request(headers=(b"X-Request-ID: a\nb",)), 400, False, None),
    ("request-id-with-control", request(headers=(b"X-Request-ID: a\x01b",)), 400, False, None),
    ("request-id-of-10k", request(headers=(b"X-Request-ID: " + b"r" * 10_000,)), 200, True, None),
    # Authorization
    ("auth-missing", request(authorization=None), 401, True, None),
    ("auth-bad-base64", request(authorization=b"Basic !!!not-base64"), 401, True, None),
    ("auth-no-colon", request(authorization=basic(b"remarkablebob")), 401, True, None),
    ("auth-user-not-utf8", request(authorization=basic(b"\xff\xfe:2rFtex")), 401, True, None),
    ("auth-bearer-scheme", request(authorization=b"Bearer 2rFtex"), 401, True, None),
    ("auth-latin1-bytes", request(authorization=b"Basic \xe9\xe9"), 401, True, None),
    ("auth-wrong-password", request(authorization=basic(b"remarkablebob:2rftex")), 401, True, None),
    ("auth-empty-password", request(authorization=basic(b"remarkablebob:")), 401, True, None),
    # /api/raw, which answers any bytes but keeps the echo's limits
    ("raw-without-credentials", request(path=b"/api/raw", authorization=None), 401, True, None),
    ("raw-gzip-truncated", request(b"\x1f\x8b", path=b"/api/raw",
     headers=(b"Content-Encoding: gzip",)), 400, True, None),
    ("raw-unknown-coding", request(b"x", path=b"/api/raw",
     headers=(b"Content-Encoding: compress",)), 415, True, None),
    ("raw-get-without-upgrade", request(method=b"GET", path=b"/api/raw"), 405, True, None),
    # a handshake whose Upgrade a proxy dropped: 426, which says so
    ("raw-handshake-without-upgrade", request(b"", method=b"GET", path=b"/api/raw",
     headers=(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", b"Sec-WebSocket-Version: 13")),
     426, True, None),
    ("raw-nul-bytes", request(b"\x00\x00", path=b"/api/raw"), 200, True, b"\x00\x00"),
    # /api/inspect and /api/stream: the query and the controls
    ("inspect-query-of-12k", inspect(b"q=" + b"x" * 12_000), 200, True, None),
    ("inspect-query-over-the-head-limit", inspect(b"q=" + b"x" * 20_000), 431, False, None),
    ("inspect-10k-parameters", inspect(b"&".join(b"p%d=" % n for n in range(1_500))), 200, True,
     None),
    # HTTP/1.1 allows 100 header fields (Host, Connection, Authorization and Content-Length
    # are four of them); the server refuses the 101st itself
    ("inspect-100-header-fields", request(b"", method=b"GET", path=b"/api/inspect",
     headers=tuple(b"X-Dup: %d" % n for n in range(96))), 200, True, None),
    ("inspect-101-header-fields", request(b"", method=b"GET", path=b"/api/inspect",
     headers=tuple(b"X-Dup: %d" % n for n in range(97))), 431, False, None),
    ("inspect-query-not-utf8", inspect(b"a=%ff%fe"), 400, True, None),
    ("inspect-query-overlong-utf8", inspect(b"a=%c0%af"), 400, True, None),
    ("inspect-gzip-truncated", request(b"\x1f\x8b", path=b"/api/inspect",
     headers=(b"Content-Encoding: gzip",)), 400, True, None),
    ("inspect-subpath", inspect(b"", path=b"/api/inspect/x"), 404, True, None),
    ("status-negative", inspect(b"status=-200"), 400, True, None),
    ("status-plus-sign", inspect(b"status=%2B200"), 400, True, None),
    ("status-space", inspect(b"status=%20200"), 400, True, None),
    ("status-fraction", inspect(b"status=200.0"), 400, True, None),
    ("status-exponent", inspect(b"status=2e2"), 400, True, None),
    ("status-hex", inspect(b"status=0xc8"), 400, True, None),
    ("status-arabic-digits", inspect(b"status=%D9%A2%D9%A0%D9%A0"), 400, True, None),
    ("status-overflow", inspect(b"status=" + b"9" * 400), 400, True, None),
    ("status-below-200", inspect(b"status=101"), 400, True, None),
    ("status-above-599", inspect(b"status=600"), 400, True, None),
    ("status-empty", inspect(b"status="), 400, True, None),
    ("status-twice", inspect(b"status=200&status=200"), 400, True, None),
    ("status-header-fraction", inspect(b"", headers=(b"X-Echod-Status: 200.5",)), 400, True,
     None),
    ("status-header-twice", inspect(b"", headers=(b"X-Echod-Status: 200",
     b"X-Echod-Status: 201")), 400, True, None),
    ("status-bad-query-beats-good-header", inspect(b"status=x",
     headers=(b"X-Echod-Status: 201",)), 400, True, None),
    ("delay-negative", inspect(b"delay_ms=-1"), 400, True, None),
    ("delay-fraction", inspect(b"delay_ms=0.5"), 400, True, None),
    ("delay-exponent", inspect(b"delay_ms=1e3"), 400, True, None),
    ("delay-over-max", inspect(b"delay_ms=10001"), 400, True, None),
    ("delay-overflow", inspect(b"delay_ms=" + b"9" * 400), 400, True, None),
    ("delay-header-space", inspect(b"", headers=(b"X-Echod-Delay-Ms: 1 0",)), 400, True, None),
    ("stream-count-zero", inspect(b"count=0", path=b"/api/stream"), 400, True, None),
    ("stream-count-overflow", inspect(b"count=" + b"9" * 400, path=b"/api/stream"), 400, True,
     None),
    ("stream-interval-overflow", inspect(b"interval_ms=" + b"9" * 400, path=b"/api/stream"),
     400, True, None),
    ("stream-too-long-in-all", inspect(b"count=1000&interval_ms=11", path=b"/api/stream"), 400,
     True, None),
    ("stream-query-not-utf8", inspect(b"count=%ff", path=b"/api/stream"), 400, True, None),
    ("stream-one-event", inspect(b"count=1", path=b"/api/stream"), 200, True, None),
    ("stream-post", request(path=b"/api/stream"), 405, True, None),
    ("stream-last-event-id-not-a-number", inspect(b"count=2", path=b"/api/stream",
     headers=(b"Last-Event-ID: abc",)), 400, True, None),
    ("stream-last-event-id-of-10-digits", inspect(b"count=2", path=b"/api/stream",
     headers=(b"Last-Event-ID: 1000000000",)), 400, True, None),
    ("stream-resumed-past-its-end", inspect(b"count=2", path=b"/api/stream",
     headers=(b"Last-Event-ID: 2",)), 204, True, b""),
    ("stream-count-header-bad", inspect(b"", path=b"/api/stream",
     headers=(b"X-Echod-Count: 0",)), 400, True, None),
    *CODING_CASES,
    *SHAPING_CASES,
    *FAULT_CASES,
    *DOWNLOAD_CASES,
    *DRIP_CASES,
    # /auth/verify is off by default: an unknown path, after auth
    ("auth-verify-off", request(b"", method=b"GET", path=b"/auth/verify"), 404, True, None),
    *SCENARIO_CASES,
]  # fmt: skip


def handshake(
    *extra: bytes,
    path: bytes = b"/api/echo",
    method: bytes = b"GET",
    version: bytes = b"HTTP/1.1",
    authorization: bytes | None = AUTH_HEADER.encode(),
    key: bytes | None = b"dGhlIHNhbXBsZSBub25jZQ==",
    websocket_version: bytes = b"13",
) -> bytes:
    """A WebSocket opening handshake (RFC 6455 4.1), closing the connection if refused."""
    lines = [
        method + b" " + path + b" " + version,
        b"Host: echod",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Version: " + websocket_version,
    ]
    if key is not None:
        lines.append(b"Sec-WebSocket-Key: " + key)
    if authorization is not None:
        lines.append(b"Authorization: " + authorization)
    return CRLF.join([*lines, *extra]) + CRLF + CRLF  # fmt: skip


# WebSocket handshakes that must not open: (id, raw, status, logged by echod, body).
# echod's refusals are granian's bare status lines, with no headers of echod's and no
# body; the server refuses the malformed ones itself, before echod sees them.
HANDSHAKES: list[tuple[str, bytes, int, bool, bytes]] = [
    ("without-key", handshake(key=None), 400, False, b'No "Sec-WebSocket-Key" header'),
    ("version-8", handshake(websocket_version=b"8"), 400, False,
     b'No "Sec-WebSocket-Version: 13" header'),
    ("without-credentials", handshake(authorization=None), 401, True, b""),
    ("wrong-password", handshake(authorization=basic(b"remarkablebob:nope")), 401, True, b""),
    ("cross-site-origin", handshake(b"Origin: http://evil.example"), 403, True, b""),
    ("null-origin", handshake(b"Origin: null"), 403, True, b""),
    ("unknown-path", handshake(path=b"/api/nope"), 404, True, b""),
    ("probe-path", handshake(path=b"/health"), 404, True, b""),
    ("post-upgrade", handshake(b"Content-Length: 0", method=b"POST"), 400, True, b""),
    ("http-1.0-upgrade", handshake(version=b"HTTP/1.0"), 400, True, b""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "status", "by_echod", "body"),
    [case[1:] for case in CORPUS],
    ids=[case[0] for case in CORPUS],
)
def test_corpus_case_gets_its_status(
    echod: Echod, raw: bytes, status: int, by_echod: bool, body: bytes | None
) -> None:
    """The request gets exactly its status, and echod's own answers are problems or echoes."""
    got, headers, content = parse(raw_exchange(echod, raw))
    assert got == status
    if body is not None:
        assert content == body
    if by_echod:
        assert UUID4.fullmatch(headers["x-request-id"])
        if status >= 400:
            assert headers["content-type"] == "application/problem+json"
            problem = json.loads(content)
            assert problem["status"] == status
            assert problem["requestId"] == headers["x-request-id"]
    else:
        assert content == b""
    if status == 401:
        assert headers["www-authenticate"] == 'Basic realm="echod", charset="UTF-8"'
    if status == 405:
        assert headers["allow"] in {
            "POST, PUT", "GET, HEAD", "GET, HEAD, POST, PUT, PATCH, DELETE", "GET, HEAD, DELETE",
        }  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "status", "body"),
    [(raw, status, body) for _, raw, status, _, body in HANDSHAKES],
    ids=[case[0] for case in HANDSHAKES],
)
def test_a_bad_handshake_never_opens_a_websocket(
    echod: Echod, raw: bytes, status: int, body: bytes
) -> None:
    """The handshake gets exactly its status and never 101, with nothing of echod's in it."""
    got, headers, content = parse(raw_exchange(echod, raw))
    assert got == status
    assert content == body
    assert "x-request-id" not in headers, "RSGI refuses a handshake with a bare status"
    assert "upgrade" not in headers


def test_every_answer_from_echod_is_logged_once(make_echod: Any) -> None:
    """One JSON line per request echod answered, none for the server library's refusals."""
    echod = make_echod()
    cases = [*CORPUS, *HANDSHAKES]
    for _, raw, _, _, _ in cases:
        raw_exchange(echod, raw)
    lines = echod.request_lines()
    assert len(lines) == sum(1 for case in cases if case[3])
    assert {line["status"] for line in lines} == {case[2] for case in cases if case[3]}


class TestBodyLimit:
    def test_declared_length_over_the_limit(self, echod: Echod) -> None:
        """A Content-Length of 1 MiB + 1 is refused without reading the body."""
        head = request(b"").replace(b"Content-Length: 0", b"Content-Length: 1048577")
        with socket.create_connection(("127.0.0.1", echod.port), timeout=5) as conn:
            conn.sendall(head)
            assert conn.recv(4096).startswith(b"HTTP/1.1 413")

    def test_chunked_body_over_the_limit(self, echod: Echod) -> None:
        """A chunked body is refused once it passes the limit."""
        chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
        raw = request(b"").replace(b"Content-Length: 0", b"Transfer-Encoding: chunked")
        with socket.create_connection(("127.0.0.1", echod.port), timeout=10) as conn:
            conn.sendall(raw)
            try:
                for _ in range(17):
                    conn.sendall(chunk)
                conn.sendall(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # echod may answer and close before the whole body is sent
            assert conn.recv(4096).startswith(b"HTTP/1.1 413")

    def test_http2_body_without_length_over_the_limit(self, make_echod: Any) -> None:
        """Over HTTP/2 a body need not declare its length; it is counted as it arrives."""
        echod = make_echod("--max-body-bytes", "1000", tls=True)

        def frames() -> Any:
            for _ in range(10):
                yield b" " * 500

        with httpx.Client(http2=True, verify=False, auth=AUTH) as client:  # noqa: S501 - self-signed
            response = client.post(echod.tls_url + "/api/echo", content=frames())
        assert response.http_version == "HTTP/2"
        assert response.status_code == 413


class TestSlowBody:
    @pytest.mark.parametrize(
        "framing",
        [b"Content-Length: 100", b"Transfer-Encoding: chunked"],
        ids=["declared-length", "chunked"],
    )
    def test_a_body_sent_too_slowly_gets_a_408_and_the_connection_closes(
        self, make_echod: Any, framing: bytes
    ) -> None:
        """--body-timeout from the request's arrival: then 408, Connection: close, closed."""
        echod = make_echod("--body-timeout", "1")
        head = request(b"").replace(b"Content-Length: 0", framing)
        begin = b'5\r\n{"a":\r\n' if b"chunked" in framing else b'{"a":'
        with socket.create_connection(("127.0.0.1", echod.port), timeout=10) as conn:
            conn.sendall(head + begin)  # and nothing more
            answered = b""
            while chunk := conn.recv(4096):  # until echod closes the connection
                answered += chunk
        status, headers, body = parse(answered)
        assert status == 408
        assert headers["connection"] == "close"
        assert json.loads(body)["detail"] == "the body did not arrive within 1 s (--body-timeout)"


class TestProtocol:
    def test_pipelined_burst_is_answered_in_order(self, echod: Echod) -> None:
        """Twenty requests in one write get twenty answers, in order."""
        burst = b"".join(
            request(b'{"n":%d}' % n).replace(b"Connection: close\r\n", b"") for n in range(20)
        )
        raw = raw_exchange(
            echod,
            burst + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            answers=None,
        )
        assert re.findall(rb'\{"n":(\d+),"echoed":true\}', raw) == [b"%d" % n for n in range(20)]

    def test_expect_100_continue_is_honoured(self, echod: Echod) -> None:
        """A client that waits for 100 Continue gets it, then its echo."""
        head = request(b"").replace(
            b"Content-Length: 0", b"Content-Length: 2\r\nExpect: 100-continue"
        )
        with socket.create_connection(("127.0.0.1", echod.port), timeout=5) as conn:
            conn.sendall(head)
            assert conn.recv(1024).startswith(b"HTTP/1.1 100")
            conn.sendall(b"{}")
            assert conn.recv(4096).endswith(b'{"echoed":true}\n')

    def test_encoded_slash_is_decoded_before_routing(self, echod: Echod) -> None:
        """Documented: paths are matched after percent-decoding, so %2F is a slash."""
        status, _, body = parse(raw_exchange(echod, request(path=b"/api%2Fecho")))
        assert (status, body) == (200, b'{"echoed":true}\n')


def test_a_scan_of_10000_random_paths_adds_no_series(make_echod: Any) -> None:
    """The number of http_requests_total series is the same before and after the scan."""
    echod = make_echod("--log-level", "error")

    def series() -> set[str]:
        text = httpx.get(echod.url + "/metrics").text
        return {line.rsplit(" ", 1)[0] for line in text.splitlines()
                if line.startswith("http_requests_total{")}  # fmt: skip

    with httpx.Client(base_url=echod.url, auth=AUTH) as client:
        client.get("/warm-up")
        before = series()
        alphabet = string.ascii_letters + string.digits + "-._~%"
        generator = random.Random(5)  # noqa: S311 - the same scan every run, not a secret
        for _ in range(10_000):
            path = "/" + "".join(generator.choices(alphabet, k=generator.randint(1, 40)))
            client.get(path)
    assert series() == before


# Bearer tokens, against an echod with a key set of an ES256 and an RSA key, which takes
# tokens from https://issuer.test for the audience api, serves /auth/verify, and reads
# request heads of up to 64 KiB (so that tokens over 8 KiB reach it to be refused).
ES = SigningKey.generate("ES256", kid="es")
RS = SigningKey.generate("RS256", kid="rs")
OTHER = SigningKey.generate("ES256", kid="other")  # not in the key set
ISSUER, AUDIENCE = "https://issuer.test", "api"
GOOD: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE}
BOTH = 'Basic realm="echod", charset="UTF-8", Bearer realm="echod"'


def token_request(token: str, *, path: bytes = b"/api/echo", method: bytes = b"POST") -> bytes:
    """A request carrying ``token`` as its bearer credentials."""
    body = b"{}" if method == b"POST" else b""
    return request(body, path=path, method=method, authorization=b"Bearer " + token.encode())


def deep(levels: int) -> bytes:
    """Claims whose ``a`` nests arrays ``levels`` deep."""
    return b'{"sub":"a","exp":9999999999,"a":' + b"[" * levels + b"]" * levels + b"}"


def signed(key: SigningKey, **more: Any) -> str:
    """A token of ``key``, for the right issuer and audience unless ``more`` says otherwise."""
    return key.sign(claims(**(GOOD | more)))


# (id, raw request, status, error_description of the invalid_token challenge or None)
TOKEN_CORPUS: list[tuple[str, bytes, int, str | None]] = [
    ("good-es256", token_request(signed(ES)), 200, None),
    ("good-rs256", token_request(signed(RS)), 200, None),
    ("exp-2-to-the-63", token_request(signed(ES, exp=2**63)), 200, None),
    ("alg-none", token_request(unsigned("es", **GOOD)), 401, "the token is not signed (alg none)"),
    ("hs256-signed-with-the-public-key", token_request(hs256_with_public_key(RS, **GOOD)), 401,
     "the token's algorithm (alg) is not accepted"),
    ("stripped-signature", token_request(signed(ES).rsplit(".", 1)[0] + "."), 401,
     "the token's signature does not verify"),
    ("swapped-kid", token_request(OTHER.sign(claims(**GOOD), kid="es")), 401,
     "the token's signature does not verify"),
    ("kid-of-the-rsa-key", token_request(ES.sign(claims(**GOOD), kid="rs")), 401,
     "the token's algorithm (alg) does not fit its key"),
    ("kid-not-in-the-file", token_request(signed(OTHER)), 401,
     "the token's key (kid) is not in the key set"),
    ("huge-header", token_request(ES.sign(claims(**GOOD), pad="x" * 7000)), 401,
     "the token is over 8192 bytes"),
    ("exp-0", token_request(signed(ES, exp=0)), 401, "the token has expired (exp)"),
    ("expired-beyond-the-leeway", token_request(signed(ES, exp=int(time.time()) - 60)), 401,
     "the token has expired (exp)"),
    ("not-yet-valid", token_request(signed(ES, nbf=int(time.time()) + 3600)), 401,
     "the token is not valid yet (nbf)"),
    ("wrong-issuer", token_request(signed(ES, iss="https://evil.test")), 401,
     "the token's issuer (iss) is not trusted"),
    ("wrong-audience", token_request(signed(ES, aud="other")), 401,
     "the token is not for this audience (aud)"),
    ("no-audience", token_request(ES.sign(claims(iss=ISSUER))), 401, "the token has no aud claim"),
    ("non-base64-parts", token_request("e30.e3!.sig"), 401, "the token is not base64url"),
    ("base64-but-not-json", token_request(f"{b64url(b'{')}.e30.sig"), 401,
     "the token's header is not JSON"),
    ("two-parts", token_request("e30.e30"), 401,
     "the token is not three base64url parts joined by dots"),
    ("empty-token", request(authorization=b"Bearer "), 401, "the Bearer scheme carries no token"),
    ("claims-nested-10000-deep", token_request(hand_made({"alg": "ES256", "kid": "es"},
     deep(10_000), b"s")), 401, "the token is over 8192 bytes"),
    ("claims-nested-2500-deep", token_request(hand_made({"alg": "ES256", "kid": "es"},
     deep(2_500), b"s")), 401, "the token's claims nest deeper than 128 levels"),
    ("no-credentials", request(authorization=None), 401, None),
    ("digest-scheme", request(authorization=b"Digest x"), 401, None),
    ("auth-verify-good", token_request(signed(ES), path=b"/auth/verify", method=b"GET"), 200,
     None),
    ("auth-verify-alg-none", token_request(unsigned("es", **GOOD), path=b"/auth/verify",
     method=b"GET"), 401, "the token is not signed (alg none)"),
    ("auth-verify-nothing", request(b"", path=b"/auth/verify", method=b"GET",
     authorization=None), 401, None),
]  # fmt: skip


@pytest.fixture(scope="module")
def jwt_echod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Echod]:
    """echod with the key set of ES and RS, the issuer and audience, and /auth/verify."""
    jwks: Path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    jwks.write_bytes(key_set(ES, RS))
    server = Echod(
        "--jwt-jwks", str(jwks), "--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE,
        "--auth-verify", "--max-header-bytes", "65536",
    )  # fmt: skip
    try:
        yield server.start()
    finally:
        server.close()


@pytest.mark.parametrize(
    ("raw", "status", "description"),
    [case[1:] for case in TOKEN_CORPUS],
    ids=[case[0] for case in TOKEN_CORPUS],
)
def test_token_corpus_case_gets_its_status_and_challenge(
    jwt_echod: Echod, raw: bytes, status: int, description: str | None
) -> None:
    """Each token gets its status; a refused one, the invalid_token challenge that says why.

    Without a token, the 401 offers both schemes. No answer quotes the token.
    """
    got, headers, content = parse(raw_exchange(jwt_echod, raw))
    assert got == status
    token = raw.partition(b"Authorization: Bearer ")[2].partition(CRLF)[0]
    if status == 401:
        problem = json.loads(content)
        if description is None:
            assert headers["www-authenticate"] == BOTH
        else:
            assert headers["www-authenticate"] == (
                f'Bearer realm="echod", error="invalid_token", error_description="{description}"'
            )
            assert problem["detail"] == description
    if token:
        for part in token.split(b"."):
            assert len(part) < 8 or part not in content, "an answer quoted the token"
        assert token not in jwt_echod.stdout().encode()


def test_no_token_reaches_the_log(jwt_echod: Echod) -> None:
    """After the whole corpus, no log line holds a token or any part of one."""
    for _, raw, _, _ in TOKEN_CORPUS:
        raw_exchange(jwt_echod, raw)
    lines = jwt_echod.request_lines()
    assert {line["authScheme"] for line in lines} >= {"bearer", None}
    text = json.dumps(lines)
    for _, raw, _, _ in TOKEN_CORPUS:
        token = raw.partition(b"Authorization: Bearer ")[2].partition(CRLF)[0].decode()
        for part in token.split("."):
            assert len(part) < 8 or part not in text
