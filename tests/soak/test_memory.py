"""Memory: what a burst of large bodies takes is handed back once it is over."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx

from tests.support.users import AUTH
from tests.support.waiting import eventually

if TYPE_CHECKING:
    from collections.abc import Callable

MIB = 2**20
#: The burst: this many clients at once, each sending BODIES bodies of BODY_BYTES.
CLIENTS = 100
BODIES = 5
BODY_BYTES = 900_000
#: What the instance may keep of the burst, and how soon the rest must be back.
KEPT = 16 * MIB
SETTLE = 10.0


def _burst(url: str, until: float) -> int:
    """Send the burst, again and again until ``until`` (at least once); the echoes done."""
    body = b'{"k": "' + b"x" * BODY_BYTES + b'"}'

    def client() -> int:
        with httpx.Client(auth=AUTH, timeout=60) as session:
            for _ in range(BODIES):
                answer = session.post(url, content=body)
                assert answer.status_code == 200
        return BODIES

    done = 0
    with ThreadPoolExecutor(CLIENTS) as pool:
        while True:
            done += sum(f.result() for f in [pool.submit(client) for _ in range(CLIENTS)])
            if time.monotonic() >= until:
                return done


def test_a_burst_of_large_bodies_leaves_no_lasting_weight(
    make_echod: Any, soak_seconds: float, record: Callable[..., None]
) -> None:
    """100 clients at once echo 900 KB bodies; within 10 s the instance is back near idle.

    Both allocators are set for this (echod.instance.allocators): left to their defaults
    they keep about 90 MiB of such a burst.
    """
    echod = make_echod("--log-level", "warning")
    url = echod.url + "/api/echo"
    with httpx.Client(auth=AUTH) as session:  # warm: what the first echoes load stays
        for _ in range(200):
            session.post(url, content=b'{"foo": "bar"}')
    time.sleep(1)
    idle = echod.pss_bytes()
    echoes = _burst(url, time.monotonic() + soak_seconds)
    over = time.monotonic()
    peak = echod.pss_bytes()
    settled = eventually(
        lambda: (pss := echod.pss_bytes()) < idle + KEPT and pss,
        timeout=SETTLE,
        failure=lambda: f"PSS {echod.pss_bytes() / MIB:.1f} MiB, idle {idle / MIB:.1f} MiB",
        interval=0.5,
    )
    record(
        echoes=echoes,
        idle_mib=round(idle / MIB, 1),
        after_burst_mib=round(peak / MIB, 1),
        settled_mib=round(settled / MIB, 1),
        settled_after_s=round(time.monotonic() - over, 1),
    )
