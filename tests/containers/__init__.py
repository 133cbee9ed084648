"""Container tests: echod's image built and run with podman, and compose with Prometheus."""
