"""Deployment tests: Prometheus rules and a real Prometheus, containers, Envoy, Kubernetes."""
