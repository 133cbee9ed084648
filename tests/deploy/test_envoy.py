"""Envoy's config, read as data: TLS on 10000, echod behind it, /metrics kept inside."""

from __future__ import annotations

from typing import Any

import pytest

from echod.settings.config import DEFAULT_HEADER_TIMEOUT
from tests.deploy.support import DEPLOY, PROMETHEUS_DIR, load_yaml

ENVOY = load_yaml(DEPLOY / "envoy" / "envoy.yaml")
TLS_CONTEXT = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def listener(port: int) -> dict[str, Any]:
    """The listener on ``port``."""
    found: dict[str, Any]
    [found] = [
        item
        for item in ENVOY["static_resources"]["listeners"]
        if item["address"]["socket_address"]["port_value"] == port
    ]
    return found


def connection_manager() -> dict[str, Any]:
    """The HTTP connection manager of the public listener."""
    [chain] = listener(10000)["filter_chains"]
    [manager] = chain["filters"]
    assert manager["name"] == "envoy.filters.network.http_connection_manager"
    config: dict[str, Any] = manager["typed_config"]
    return config


def cluster(name: str) -> dict[str, Any]:
    """The cluster called ``name``."""
    found: dict[str, Any]
    [found] = [item for item in ENVOY["static_resources"]["clusters"] if item["name"] == name]
    return found


def matching_route(path: str) -> dict[str, Any] | None:
    """The first route that Envoy picks for ``path`` (query string removed), or None."""
    path = path.partition("?")[0]
    [host] = connection_manager()["route_config"]["virtual_hosts"]
    assert host["domains"] == ["*"]
    for route in host["routes"]:
        match = route["match"]
        assert set(match) <= {"path", "prefix"}, f"the test cannot judge the matcher {match}"
        if match.get("path") == path or path.startswith(match.get("prefix", "\0")):
            found: dict[str, Any] = route
            return found
    return None


def seconds(duration: str) -> float:
    """An Envoy duration such as ``5s`` in seconds."""
    assert duration.endswith("s"), duration
    return float(duration.removesuffix("s"))


class TestTlsListener:
    def test_listens_on_10000_on_all_interfaces(self) -> None:
        """The public listener binds 0.0.0.0:10000."""
        assert listener(10000)["address"]["socket_address"]["address"] == "0.0.0.0"

    def test_terminates_tls_with_the_built_certificate(self) -> None:
        """TLS 1.2 or newer, HTTP/2 by ALPN, with the certificate the image makes."""
        [chain] = listener(10000)["filter_chains"]
        socket = chain["transport_socket"]
        assert socket["typed_config"]["@type"] == TLS_CONTEXT
        context = socket["typed_config"]["common_tls_context"]
        assert context["alpn_protocols"] == ["h2", "http/1.1"]
        assert context["tls_params"]["tls_minimum_protocol_version"] == "TLSv1_2"
        [certificate] = context["tls_certificates"]
        assert certificate["certificate_chain"]["filename"] == "/etc/envoy/tls/server.crt"
        assert certificate["private_key"]["filename"] == "/etc/envoy/tls/server.key"
        dockerfile = (DEPLOY / "envoy" / "Dockerfile").read_text()
        assert "/etc/envoy/tls/" in dockerfile

    def test_paths_are_normalized_before_routing(self) -> None:
        """//metrics, /a/../metrics and %2F cannot sneak past the /metrics route."""
        manager = connection_manager()
        assert manager["normalize_path"] is True
        assert manager["merge_slashes"] is True
        assert manager["path_with_escaped_slashes_action"] == "UNESCAPE_AND_REDIRECT"

    def test_websockets_are_passed_on(self) -> None:
        """Without upgrade_configs, Envoy answers a WebSocket handshake itself (403/404)."""
        upgrades = connection_manager().get("upgrade_configs", [])
        assert {"upgrade_type": "websocket"} in upgrades


class TestRoutes:
    @pytest.mark.parametrize(
        "path",
        ["/api/echo", "/health", "/ready", "/", "/metrics/", "/api/echo?metrics"],
        ids=["echo", "health", "ready", "root", "metrics-slash", "query"],
    )
    def test_path_goes_to_echod(self, path: str) -> None:
        """Everything but /metrics is forwarded to the backend cluster."""
        route = matching_route(path)
        assert route is not None
        assert route["route"]["cluster"] == "backend"

    @pytest.mark.parametrize("path", ["/metrics", "/metrics?x=1"], ids=["plain", "query"])
    def test_metrics_is_not_routed(self, path: str) -> None:
        """/metrics is answered 404 by Envoy itself and never reaches echod."""
        route = matching_route(path)
        assert route is not None
        assert "route" not in route
        assert route["direct_response"]["status"] == 404

    def test_backend_is_echod_on_3000(self) -> None:
        """The backend cluster resolves the compose service backend, port 3000."""
        [endpoints] = cluster("backend")["load_assignment"]["endpoints"]
        [endpoint] = endpoints["lb_endpoints"]
        address = endpoint["endpoint"]["address"]["socket_address"]
        assert (address["address"], address["port_value"]) == ("backend", 3000)

    def test_backend_health_follows_readiness(self) -> None:
        """Envoy checks echod's /ready, so a draining echod stops getting requests."""
        [check] = cluster("backend")["health_checks"]
        assert check["http_health_check"]["path"] == "/ready"

    def test_idle_connections_close_before_echod_closes_them(self) -> None:
        """Envoy's upstream idle timeout is below echod's header (idle) timeout."""
        options = cluster("backend")["typed_extension_protocol_options"][HTTP_OPTIONS]
        idle = seconds(options["common_http_protocol_options"]["idle_timeout"])
        assert idle < DEFAULT_HEADER_TIMEOUT


class TestAdmin:
    def test_admin_listens_on_9901(self) -> None:
        """Envoy's admin interface, with its stats, is on port 9901."""
        assert ENVOY["admin"]["address"]["socket_address"]["port_value"] == 9901

    def test_prometheus_scrapes_the_admin_stats(self) -> None:
        """Prometheus's envoy job reads /stats/prometheus from the admin port."""
        config = load_yaml(PROMETHEUS_DIR / "prometheus.yaml")
        [job] = [job for job in config["scrape_configs"] if job["job_name"] == "envoy"]
        assert job["metrics_path"] == "/stats/prometheus"
        assert job["static_configs"] == [{"targets": ["envoy:9901"]}]
