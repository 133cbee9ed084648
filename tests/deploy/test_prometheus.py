"""A real Prometheus scrapes a real echod and runs the alert rules and the dashboard queries."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from scripts.stack import local_config
from tests.deploy.support import ALERTS, DEPLOY, Prometheus, load_yaml
from tests.support.processes import Echod, free_port
from tests.support.users import AUTH
from tests.support.waiting import eventually

if TYPE_CHECKING:
    from collections.abc import Iterator

DASHBOARD = DEPLOY / "grafana" / "echod.json"
# What Grafana puts in for $__rate_interval at this scrape interval, give or take.
RATE_INTERVAL = "1m"
TRAFFIC_TIMEOUT = 30.0


def send_traffic(echod: Echod) -> None:
    """A few answered requests: echoes, a refused password and an unknown path."""
    with httpx.Client(base_url=echod.url, timeout=10) as client:
        for _ in range(5):
            assert client.post("/api/echo", json={"n": 1}, auth=AUTH).status_code == 200
        assert client.post("/api/echo", json={}, auth=("nobody", "wrong")).status_code == 401
        assert client.get("/nowhere", auth=AUTH).status_code == 404


@pytest.fixture(scope="module")
def prometheus() -> Iterator[Prometheus]:
    """Prometheus scraping echod every second, once the request rate it sees is above zero.

    echod serves HTTPS too, so that the certificate's expiry is there to query.
    """
    echod = Echod(tls=True)
    server = Prometheus(free_port())
    try:
        echod.start()
        # make stack's config, scraping and evaluating every second instead of every 5 s.
        config = local_config(echod.port, server.port)
        config["global"] |= {"scrape_interval": "1s", "scrape_timeout": "1s"}
        config["global"]["evaluation_interval"] = "1s"
        server.start(config)
        # A rate needs two scrapes that saw different counts: send until one does.

        def rate() -> list[dict[str, Any]]:
            found = server.query('sum(rate(http_requests_total{job="echod"}[1m])) > 0')
            if not found:
                send_traffic(echod)
            return found

        eventually(
            rate,
            timeout=TRAFFIC_TIMEOUT,
            interval=0.5,
            failure=lambda: f"no request rate: {server.log()}",
        )
        yield server
    finally:
        server.stop()
        echod.close()


def dashboard_queries() -> list[Any]:
    """Every PromQL expression of the Grafana dashboard, named by its panel."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [
        pytest.param(target["expr"], id=f"{panel['title']}-{target['refId']}")
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    assert queries, "the dashboard has no queries"
    return queries


class TestScrape:
    def test_echod_target_is_up(self, prometheus: Prometheus) -> None:
        """up{job="echod"} is 1, and the target's last scrape had no error."""
        assert prometheus.query('up{job="echod"} == 1')
        [target] = [
            target
            for target in prometheus.api("targets")["activeTargets"]
            if target["labels"]["job"] == "echod"
        ]
        assert target["health"] == "up"
        assert target["lastError"] == ""

    def test_request_rate_is_counted_by_status(self, prometheus: Prometheus) -> None:
        """rate(http_requests_total[1m]) is above zero, with the statuses echod answered."""
        result = prometheus.query('rate(http_requests_total{job="echod"}[1m]) > 0')
        statuses = {sample["metric"]["status"] for sample in result}
        assert "200" in statuses
        assert all(float(sample["value"][1]) > 0 for sample in result)

    def test_latency_quantile_is_a_duration_in_milliseconds(self, prometheus: Prometheus) -> None:
        """histogram_quantile over the duration buckets is a finite number of milliseconds."""
        [sample] = prometheus.query(
            "histogram_quantile(0.99, sum by (le) ("
            'rate(http_request_duration_milliseconds_bucket{job="echod"}[1m])))'
        )
        p99 = float(sample["value"][1])
        assert math.isfinite(p99)
        assert 0 < p99 <= 10000

    def test_prometheus_scrapes_itself(self, prometheus: Prometheus) -> None:
        """The prometheus job of the config is up as well."""
        assert prometheus.query('up{job="prometheus"} == 1')


class TestRules:
    def test_every_rule_is_loaded(self, prometheus: Prometheus) -> None:
        """Prometheus has loaded each group of alerts.yaml with its alerts in order."""
        expected = {
            group["name"]: [rule["alert"] for rule in group["rules"]]
            for group in load_yaml(ALERTS)["groups"]
        }
        loaded = {
            group["name"]: [rule["name"] for rule in group["rules"]]
            for group in prometheus.api("rules")["groups"]
        }
        assert loaded == expected

    def test_every_rule_evaluates_without_error(self, prometheus: Prometheus) -> None:
        """Once evaluated, every rule is healthy and has no error."""
        seen: list[dict[str, Any]] = []

        def evaluated() -> list[dict[str, Any]]:
            seen[:] = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
            return seen if seen and all(rule["health"] != "unknown" for rule in seen) else []

        rules = eventually(
            evaluated,
            timeout=TRAFFIC_TIMEOUT,
            interval=0.2,
            failure=lambda: f"rules not evaluated: {seen}",
        )
        assert [(r["name"], r["health"], r.get("lastError", "")) for r in rules] == [
            (r["name"], "ok", "") for r in rules
        ]


class TestDashboard:
    @pytest.mark.parametrize("expr", dashboard_queries())
    def test_panel_query_returns_data(self, prometheus: Prometheus, expr: str) -> None:
        """The panel's expression runs on Prometheus and returns at least one number."""
        query = expr.replace("$__rate_interval", RATE_INTERVAL)
        assert "$" not in query, f"a dashboard variable the test does not know: {query}"
        result = prometheus.query(query)
        assert result, f"no data for {query}"
        assert all(math.isfinite(float(sample["value"][1])) for sample in result)
