"""Contract tests: the OpenAPI document, schemathesis against a live echod, and properties."""
