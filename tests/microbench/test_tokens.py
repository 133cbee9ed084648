"""Bearer tokens on the hot path, timed without a server: first verification against repeats.

``make microbench`` times them; the figures are in docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

import pytest

from echod.http.bearer import Tokens
from echod.http.keyset import KeySet, Policy
from tests.support.harness import FakeHeaders, FakeProto, FakeScope, quiet_app
from tests.support.tokens import SigningKey, bearer, claims, key_set
from tests.support.users import cheap_users

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_benchmark.fixture import BenchmarkFixture

ALGORITHMS = ("ES256", "RS256", "EdDSA")


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    """A key of each algorithm timed."""
    return {alg: SigningKey.generate(alg, kid=alg) for alg in ALGORITHMS}


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_first_verification(
    benchmark: BenchmarkFixture, keys: dict[str, SigningKey], alg: str
) -> None:
    """A token not seen before: its shape, its signature and its claims, by PyJWT."""
    key_set_ = KeySet.parse(key_set(*keys.values()))
    header = bearer(keys[alg].sign(claims()))
    identity = benchmark(lambda: Tokens(key_set_, Policy()).verify(header))
    assert identity.user == "alice"


def test_repeated_token(benchmark: BenchmarkFixture, keys: dict[str, SigningKey]) -> None:
    """A token verified before costs a table lookup and a look at the clock."""
    tokens = Tokens(KeySet.parse(key_set(keys["ES256"])), Policy())
    header = bearer(keys["ES256"].sign(claims()))
    tokens.verify(header)
    assert benchmark(tokens.verify, header).user == "alice"


def test_whole_request_with_a_token(
    benchmark: BenchmarkFixture, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    """The echo with an ES256 token verified before, as test_whole_request does with Basic."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    app, store = quiet_app(
        tmp_path, devnull, cheap_users(alice="wonderland"), key_set(keys["ES256"])
    )
    token = bearer(keys["ES256"].sign(claims()))
    headers = FakeHeaders({"host": "echod.test", "authorization": token, "content-length": "14"})
    scope = FakeScope("POST", "/api/echo", headers)

    def drive() -> FakeProto:
        proto = FakeProto(b'{"foo": "bar"}')
        coroutine = app.__rsgi__(scope, proto)  # type: ignore[arg-type]
        with contextlib.suppress(StopIteration):
            coroutine.send(None)
        return proto

    proto = benchmark(drive)
    assert proto.response.status == 200
    os.close(devnull)
    store.close()
