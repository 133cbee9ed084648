"""The Kubernetes manifests: schema-valid, wired to each other, and fit for echod's shutdown."""

from __future__ import annotations

import re
from typing import Any

import pytest

from echod.instance.supervisor import KILL_GRACE
from echod.settings.config import Settings
from echod.version import __version__
from tests.deploy.support import ALERTS, DEPLOY, REPO, load_yaml, run_tool
from tests.support.tools import require_tool

K8S = DEPLOY / "k8s"
BUILT_IN = ["deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml"]
#: The oldest Kubernetes the manifests are for: the preStop sleep action is on from 1.30.
OLDEST = "1.30.0"
LABELS = {"app.kubernetes.io/name": "echod"}


def manifest(name: str) -> dict[str, Any]:
    """The one object in ``deploy/k8s/<name>``."""
    found: dict[str, Any] = load_yaml(K8S / name)
    return found


def container() -> dict[str, Any]:
    """The echod container of the Deployment."""
    found: dict[str, Any]
    [found] = manifest("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    assert found["name"] == "echod"
    return found


def env(name: str) -> str | None:
    """The value the Deployment gives the variable ``name``, if any."""
    values = {item["name"]: item["value"] for item in container().get("env", [])}
    return values.get(name)


class TestSchemas:
    @pytest.mark.parametrize(
        "name", BUILT_IN, ids=[name.removesuffix(".yaml") for name in BUILT_IN]
    )
    @pytest.mark.parametrize("version", [OLDEST, None], ids=["oldest", "newest"])
    def test_kubernetes_validate_passes_strictly(self, name: str, version: str | None) -> None:
        """kubernetes-validate --strict accepts the object, for 1.30 and its newest version."""
        validate = require_tool("kubernetes-validate", "PyPI package kubernetes-validate (dev)")
        versions = ["--kubernetes-version", version] if version else []
        done = run_tool(validate, "--strict", *versions, str(K8S / name))
        assert done.returncode == 0, done.stdout + done.stderr
        assert " passed for resource " in done.stdout + done.stderr

    def test_every_manifest_is_checked(self) -> None:
        """Each file is a built-in kind checked above or one of the operator's two kinds."""
        operator = {"servicemonitor.yaml", "prometheusrule.yaml"}
        assert {path.name for path in K8S.glob("*.yaml")} == {*BUILT_IN, *operator}
        for name in operator:
            assert manifest(name)["apiVersion"] == "monitoring.coreos.com/v1"


class TestDeployment:
    def test_runs_at_least_two_replicas(self) -> None:
        """Two pods or more, from the Deployment and from the autoscaler."""
        assert manifest("deployment.yaml")["spec"]["replicas"] >= 2
        assert manifest("hpa.yaml")["spec"]["minReplicas"] >= 2

    def test_probes_ask_health_and_ready(self) -> None:
        """Liveness asks /health and readiness /ready, on echod's HTTP port."""
        echod = container()
        assert echod["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
        assert echod["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
        assert echod["ports"] == [{"name": "http", "containerPort": 3000}]

    def test_requests_and_limits_cpu_and_memory(self) -> None:
        """Both requests and limits name CPU and memory."""
        resources = container()["resources"]
        assert set(resources["requests"]) == {"cpu", "memory"}
        assert set(resources["limits"]) == {"cpu", "memory"}

    def test_runs_as_the_image_user_on_a_read_only_root(self) -> None:
        """Non-root as the Dockerfile's uid, no privilege escalation, a read-only root."""
        pod = manifest("deployment.yaml")["spec"]["template"]["spec"]["securityContext"]
        [image_user] = re.findall(r"^USER (\d+)$", (REPO / "Dockerfile").read_text(), re.MULTILINE)
        assert pod["runAsNonRoot"] is True
        assert pod["runAsUser"] == int(image_user)
        security = container()["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]

    def test_group_and_port_are_the_images(self) -> None:
        """runAsGroup is the image's group, and the container port is one the image exposes."""
        dockerfile = (REPO / "Dockerfile").read_text()
        [gid] = re.findall(r"groupadd --system --gid (\d+) echod", dockerfile)
        pod = manifest("deployment.yaml")["spec"]["template"]["spec"]["securityContext"]
        assert pod["runAsGroup"] == int(gid)
        [exposed] = re.findall(r"^EXPOSE (.+)$", dockerfile, re.MULTILINE)
        [port] = container()["ports"]
        assert str(port["containerPort"]) in exposed.split()
        assert port["containerPort"] == Settings().port

    def test_grace_period_covers_pre_stop_and_shutdown(self) -> None:
        """preStop, drain delay, shutdown timeout and kill grace fit the termination grace."""
        spec = manifest("deployment.yaml")["spec"]["template"]["spec"]
        pre_stop = container()["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pre_stop > 0
        shutdown = float(env("ECHOD_SHUTDOWN_TIMEOUT") or "10")
        drain = float(env("ECHOD_DRAIN_DELAY") or "0")
        assert pre_stop + drain + shutdown + KILL_GRACE < spec["terminationGracePeriodSeconds"]

    def test_image_is_this_version(self) -> None:
        """The image tag is the version of echod in this repository."""
        assert container()["image"] == f"echod:{__version__}"


class TestWiring:
    def test_selectors_match_the_pods(self) -> None:
        """The Deployment, Service and PodDisruptionBudget select the pods' labels."""
        deployment = manifest("deployment.yaml")["spec"]
        assert deployment["template"]["metadata"]["labels"] == LABELS
        assert deployment["selector"]["matchLabels"] == LABELS
        assert manifest("service.yaml")["spec"]["selector"] == LABELS
        assert manifest("pdb.yaml")["spec"]["selector"]["matchLabels"] == LABELS

    def test_service_targets_the_http_port(self) -> None:
        """The Service's port http goes to the container's port http."""
        [port] = manifest("service.yaml")["spec"]["ports"]
        assert (port["name"], port["port"], port["targetPort"]) == ("http", 3000, "http")

    def test_autoscaler_scales_the_deployment(self) -> None:
        """The HorizontalPodAutoscaler targets the echod Deployment."""
        target = manifest("hpa.yaml")["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", "echod")

    def test_disruption_budget_leaves_a_pod(self) -> None:
        """At least one pod stays, and a drain can still evict the others."""
        budget = manifest("pdb.yaml")["spec"]["minAvailable"]
        assert 1 <= budget < manifest("deployment.yaml")["spec"]["replicas"]

    def test_service_monitor_scrapes_metrics_as_job_echod(self) -> None:
        """It selects the Service and scrapes /metrics on its http port; the job is echod."""
        monitor = manifest("servicemonitor.yaml")["spec"]
        assert monitor["selector"]["matchLabels"] == manifest("service.yaml")["metadata"]["labels"]
        [endpoint] = monitor["endpoints"]
        assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
        # Without a jobLabel, the operator names the job after the Service.
        assert "jobLabel" not in monitor
        assert manifest("service.yaml")["metadata"]["name"] == "echod"


class TestPrometheusRule:
    def test_holds_the_same_rules_as_alerts_yaml(self) -> None:
        """spec.groups equals the groups of deploy/prometheus/alerts.yaml."""
        assert manifest("prometheusrule.yaml")["spec"] == load_yaml(ALERTS)
