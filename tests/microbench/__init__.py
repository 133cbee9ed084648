"""Microbenchmarks of the per-request hot path (pytest-benchmark), runnable without a server."""
