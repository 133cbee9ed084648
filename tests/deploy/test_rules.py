"""The Prometheus config and alert rules: promtool checks and unit tests, annotations."""

from __future__ import annotations

import re
from typing import Any

import pytest

from echod.routes import ROUTES
from tests.deploy.support import ALERTS, PROMETHEUS_DIR, REPO, load_yaml, run_tool
from tests.support.tools import require_tool

RUNBOOK = REPO / "docs" / "runbook.md"
PROMTOOL_PACKAGE = "Debian package prometheus"


def alert_rules() -> list[Any]:
    """Each alert of alerts.yaml, named by its group and alert."""
    return [
        pytest.param(rule, id=f"{group['name']}-{rule['alert']}")
        for group in load_yaml(ALERTS)["groups"]
        for rule in group["rules"]
    ]


def heading_anchors(markdown: str) -> set[str]:
    """The anchors that GitHub makes for the headings of a Markdown text."""
    anchors = set()
    for line in markdown.splitlines():
        if match := re.match(r"#{1,6} (.+)", line):
            text = re.sub(r"[^\w\- ]", "", match[1].strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


class TestPromtool:
    def test_config_is_valid(self) -> None:
        """promtool check config accepts prometheus.yaml and the rule file it loads."""
        promtool = require_tool("promtool", PROMTOOL_PACKAGE)
        done = run_tool(promtool, "check", "config", "prometheus.yaml", cwd=PROMETHEUS_DIR)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCESS: 1 rule files found" in done.stdout

    def test_rules_are_valid_and_lint_clean(self) -> None:
        """promtool check rules accepts alerts.yaml with its linter on."""
        promtool = require_tool("promtool", PROMTOOL_PACKAGE)
        done = run_tool(promtool, "check", "rules", "--lint=all", "alerts.yaml", cwd=PROMETHEUS_DIR)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"SUCCESS: {len(alert_rules())} rules found" in done.stdout

    def test_rule_unit_tests_pass(self) -> None:
        """promtool test rules: each alert fires when it should and is silent when it should not."""
        promtool = require_tool("promtool", PROMTOOL_PACKAGE)
        done = run_tool(promtool, "test", "rules", "alerts_test.yaml", cwd=PROMETHEUS_DIR)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCESS" in done.stdout

    @pytest.mark.parametrize("rule", alert_rules())
    def test_every_alert_has_a_unit_test_that_fires_it(self, rule: dict[str, Any]) -> None:
        """alerts_test.yaml expects each alert to fire, with its labels, at least once."""
        expected = [
            alert["exp_labels"]
            for test in load_yaml(PROMETHEUS_DIR / "alerts_test.yaml")["tests"]
            for case in test["alert_rule_test"]
            if case["alertname"] == rule["alert"]
            for alert in case["exp_alerts"]
        ]
        assert any(rule["labels"].items() <= labels.items() for labels in expected), rule


class TestAnnotations:
    @pytest.mark.parametrize("rule", alert_rules())
    def test_alert_has_severity_summary_description(self, rule: dict[str, Any]) -> None:
        """Each alert says how bad it is, what happened and what it means."""
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]

    @pytest.mark.parametrize("rule", alert_rules())
    def test_runbook_url_points_at_a_section(self, rule: dict[str, Any]) -> None:
        """The runbook_url is a section of docs/runbook.md that names the alert."""
        path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert path == "docs/runbook.md"
        assert anchor in heading_anchors(RUNBOOK.read_text())
        assert anchor.startswith(rule["alert"].lower())


class TestFixtureRoutes:
    def test_the_5xx_alert_leaves_out_exactly_the_untimed_routes(self) -> None:
        """A route whose status and length its client picks pages no one; every other does.

        The routes that are not timed (the fixtures) are left out of the latency
        histogram by echod, and out of the 5xx rate by the alert's path!~ matcher, which
        Prometheus anchors at both ends.
        """
        [rule] = [
            rule
            for group in load_yaml(ALERTS)["groups"]
            for rule in group["rules"]
            if rule["alert"] == "HttpHigh5xxErrorRate"
        ]
        patterns = set(re.findall(r'path!~"([^"]+)"', rule["expr"]))
        assert len(patterns) == 1, patterns
        left_out = re.compile(patterns.pop())
        for route in ROUTES:
            if not route.probe:
                assert bool(left_out.fullmatch(route.path)) == (not route.timed), route.path
