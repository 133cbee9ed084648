"""Scenarios against real echod processes: exact across workers, and across replicas on Redis.

- Two workers share the runtime directory's state: 100 clients at once get exactly the
  bucket's tokens and every attempt number once; a worker killed with SIGKILL loses no
  count.
- Redis down: scenario requests get 503 that says so, everything else is served, /ready
  stays 200, the failures are counted, and echod uses Redis again once it is back.
- Two echod instances on one Redis behind nginx, round robin: fail=3 fails exactly the
  first three attempts whichever instance takes them, the log holds attempts from both
  instances, and a rate of 20/s holds across both.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import signal
import subprocess
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.support.processes import START_TIMEOUT, free_port
from tests.support.redis import RedisServer
from tests.support.tools import nginx_conf, require_tool
from tests.support.users import AUTH
from tests.support.waiting import eventually

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.support.processes import Echod

CLIENTS = 100


async def _burst(base: str, path: str, count: int) -> list[httpx.Response]:
    """``count`` GETs of ``path``, ``CLIENTS`` at a time, each client on its own connection."""
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, auth=AUTH, limits=limits, timeout=30) as client:
        gate = asyncio.Semaphore(CLIENTS)

        async def one() -> httpx.Response:
            async with gate:
                return await client.get(path)

        return await asyncio.gather(*(one() for _ in range(count)))


def burst(base: str, path: str, count: int) -> list[httpx.Response]:
    """:func:`_burst`, from a test."""
    return asyncio.run(_burst(base, path, count))


def attempt_log(base: str, key: str) -> dict[str, Any]:
    """The log of ``key``."""
    answer = httpx.get(f"{base}/api/attempts/{key}", auth=AUTH, timeout=10)
    assert answer.status_code == 200, answer.text
    log: dict[str, Any] = answer.json()
    return log


@pytest.fixture(scope="module")
def two_workers() -> Iterator[Echod]:
    """One echod of two workers, sharing the runtime directory's state."""
    from tests.support.processes import Echod  # noqa: PLC0415 - as the other fixtures

    server = Echod("--workers", "2", "--log-level", "warning")
    try:
        yield server.start()
    finally:
        server.close()


class TestTwoWorkers:
    def test_100_clients_get_exactly_the_buckets_tokens(self, two_workers: Echod) -> None:
        """rate=1/h, burst=50, fail=3: 3 failures, 47 reports, 350 refusals; no overshoot."""
        answers = burst(two_workers.url, "/api/inspect?key=exact&rate=1/h&burst=50&fail=3", 400)
        statuses = collections.Counter(answer.status_code for answer in answers)
        assert statuses == {503: 3, 200: 47, 429: 350}
        numbers = sorted(int(answer.headers["x-echod-attempt"]) for answer in answers)
        assert numbers == list(range(1, 401))
        failed = sorted(int(a.headers["x-echod-attempt"]) for a in answers if a.status_code == 503)
        assert failed == [1, 2, 3]
        log = attempt_log(two_workers.url, "exact")
        assert [entry["attempt"] for entry in log["attempts"]] == list(range(1, 401))
        assert len({entry["pid"] for entry in log["attempts"]}) == 2  # both workers took some
        assert two_workers.metric('echod_scenario_requests_total{result="limited"}') == 350

    def test_a_user_bucket_is_exact_too(self, two_workers: Echod) -> None:
        """rate= without a key: the user's bucket, 20 tokens for 100 requests at once."""
        answers = burst(two_workers.url, "/api/inspect?rate=1/h&burst=20", 100)
        statuses = collections.Counter(answer.status_code for answer in answers)
        assert statuses == {200: 20, 429: 80}

    def test_a_killed_worker_loses_no_count(self, make_echod: Any) -> None:
        """SIGKILL to one of two workers between bursts: every number answered is in the log."""
        echod = make_echod("--workers", "2", "--log-level", "warning")
        first = burst(echod.url, "/api/inspect?key=crash", 100)
        victim = echod.workers()[0]
        subprocess.run(["kill", "-KILL", str(victim)], check=True)
        eventually(
            lambda: victim not in echod.workers() and len(echod.workers()) == 2,
            timeout=10,
            failure="the killed worker was not replaced",
        )
        second = burst(echod.url, "/api/inspect?key=crash", 100)
        answered = [int(a.headers["x-echod-attempt"]) for a in [*first, *second]]
        assert sorted(answered) == list(range(1, 201))
        log = attempt_log(echod.url, "crash")
        assert [entry["attempt"] for entry in log["attempts"]] == list(range(1, 201))


class TestRedisDown:
    def test_scenarios_get_503_and_the_rest_is_served_until_it_is_back(
        self, make_echod: Any
    ) -> None:
        """Stop Redis: a problem that names it, counted; start it: scenarios work again."""
        redis = RedisServer()
        try:
            redis.start()
            echod = make_echod("--state", redis.url)
            client = httpx.Client(base_url=echod.url, auth=AUTH, timeout=10)
            assert client.get("/api/inspect?key=down&fail=1").status_code == 503
            assert client.get("/api/inspect?key=down&fail=1").status_code == 200
            redis.stop()
            answer = client.get("/api/inspect?key=down")
            assert answer.status_code == 503
            assert answer.headers["retry-after"] == "1"
            detail = answer.json()["detail"]
            assert detail.startswith(f"the state store {redis.url} cannot be used: ")
            started = time.monotonic()
            assert client.get("/api/attempts/down").status_code == 503
            assert time.monotonic() - started < 1.0
            assert client.post("/api/echo", content=b"{}").status_code == 200
            assert client.get("/api/inspect?status=201").status_code == 201
            assert httpx.get(echod.url + "/ready").status_code == 200
            assert echod.metric('echod_state_errors_total{operation="attempt"}') == 1
            assert echod.metric('echod_state_errors_total{operation="read"}') == 1
            redis.start()
            eventually(
                lambda: client.get("/api/inspect?key=back").status_code == 200,
                timeout=15,
                failure="echod did not use Redis again",
            )
            warnings = echod.lines_starting(f"the state store {redis.url} cannot be used")
            assert len(warnings) == 1
            assert warnings[0]["level"] == "warning"
            echod.wait_for_lines(f"the state store {redis.url} answers again")
            client.close()
        finally:
            redis.close()

    def test_echod_starts_without_redis_and_says_which_store_it_uses(self, make_echod: Any) -> None:
        """Redis need not be up at start; the start line names the store, without a password."""
        port = free_port()
        echod = make_echod(
            "--state", f"redis://bob@127.0.0.1:{port}/3", env={"ECHOD_STATE_PASSWORD": "hunter2"}
        )
        [started] = echod.lines_starting("echod started")
        assert started["state"] == f"redis://bob@127.0.0.1:{port}/3"
        answer = httpx.get(echod.url + "/api/inspect?key=k", auth=AUTH, timeout=10)
        assert answer.status_code == 503
        assert "hunter2" not in echod.stdout() + echod.stderr() + answer.text


#: The http block of the replicas' nginx: round robin over two echod, no retries.
UPSTREAM = """\
    upstream echod {{
        server 127.0.0.1:{first};
        server 127.0.0.1:{second};
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://echod;
            proxy_next_upstream off;
        }}
    }}"""


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Two echod instances on one Redis, behind nginx's round robin: nginx's URL."""
    from tests.support.processes import Echod  # noqa: PLC0415 - as the other fixtures

    nginx = require_tool("nginx", "Debian package nginx")
    directory: Path = tmp_path_factory.mktemp("replicas")
    redis = RedisServer()
    instances = [Echod("--state", redis.url, "--log-level", "warning") for _ in range(2)]
    port = free_port()
    (directory / "nginx.conf").write_text(
        nginx_conf(
            directory,
            UPSTREAM.format(first=instances[0].port, second=instances[1].port, port=port),
        )
    )
    proxy: subprocess.Popen[bytes] | None = None
    try:
        redis.start()
        for instance in instances:
            instance.start()
        proxy = subprocess.Popen(
            [nginx, "-p", str(directory), "-c", str(directory / "nginx.conf"), "-e", "stderr"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(url + "/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        eventually(up, timeout=START_TIMEOUT, failure="nginx did not start")
        yield url
    finally:
        if proxy is not None:
            proxy.send_signal(signal.SIGQUIT)
            try:
                proxy.wait(10)
            except subprocess.TimeoutExpired:
                proxy.kill()
        for instance in instances:
            instance.close()
        redis.close()


class TestReplicas:
    def test_fail_3_fails_exactly_the_first_three_whichever_instance_takes_them(
        self, replicas: str
    ) -> None:
        """Sequential attempts alternate between the instances; the first three fail."""
        with httpx.Client(base_url=replicas, auth=AUTH, timeout=10) as client:
            answers = [client.get("/api/inspect?key=replicated&fail=3") for _ in range(8)]
        assert [a.status_code for a in answers] == [503] * 3 + [200] * 5
        assert [a.headers["x-echod-attempt"] for a in answers] == [str(n) for n in range(1, 9)]
        instances = [json.loads(a.text)["instance"]["id"] for a in answers[3:]]
        assert len(set(instances)) == 2
        log = attempt_log(replicas, "replicated")
        by = [entry["instance"] for entry in log["attempts"]]
        assert len(set(by)) == 2
        assert [entry["status"] for entry in log["attempts"]] == [503] * 3 + [200] * 5

    def test_100_clients_through_both_get_every_number_once(self, replicas: str) -> None:
        """Concurrent attempts spread over two instances: no number twice, none lost."""
        answers = burst(replicas, "/api/inspect?key=spread", 300)
        assert sorted(int(a.headers["x-echod-attempt"]) for a in answers) == list(range(1, 301))
        log = attempt_log(replicas, "spread")
        assert len({entry["instance"] for entry in log["attempts"]}) == 2

    def test_a_rate_of_20_per_second_holds_across_both(self, replicas: str) -> None:
        """For 2.5 s, 40 clients ask as fast as they can: no more pass than 20 + 20/s."""

        async def flood() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=40)
            async with httpx.AsyncClient(
                base_url=replicas, auth=AUTH, limits=limits, timeout=10
            ) as client:
                deadline = time.monotonic() + 2.5
                answers: list[httpx.Response] = []

                async def client_loop() -> None:
                    while time.monotonic() < deadline:
                        answers.append(await client.get("/api/inspect?key=rated&rate=20/s"))

                await asyncio.gather(*(client_loop() for _ in range(40)))
                return answers

        answers = asyncio.run(flood())
        passed = [a for a in answers if a.status_code == 200]
        assert {a.status_code for a in answers} == {200, 429}
        log = attempt_log(replicas, "rated")["attempts"]
        times = [entry["time"] for entry in log if entry["status"] == 200]
        # The bucket starts full (20) and earns 20 a second, on Redis's clock.
        first, last = (_seconds(times[0]), _seconds(times[-1]))
        assert len(passed) <= 20 + 20 * (last - first) + 1
        assert len(passed) >= 20 + 20 * (last - first) - 2
        assert len({entry["instance"] for entry in log if entry["status"] == 200}) == 2


def _seconds(rfc3339: str) -> float:
    """Seconds of Unix time of an entry's time."""
    return dt.datetime.fromisoformat(rfc3339).timestamp()
