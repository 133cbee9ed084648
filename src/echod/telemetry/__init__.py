"""Telemetry: the record of each request, the log lines and the metrics that it feeds."""
