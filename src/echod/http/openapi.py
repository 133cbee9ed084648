"""OpenAPI: the document of echod's HTTP interface, shipped in the package as JSON.

Its source is ``docs/openapi.yaml``; ``make openapi`` writes this JSON form of it, so
that echod needs no YAML parser to serve it at ``GET /openapi.json``.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["openapi_document"]


def openapi_document() -> bytes:
    """Return the OpenAPI 3.1 document of echod, as the JSON that ``/openapi.json`` serves."""
    return (resources.files("echod") / "openapi.json").read_bytes()
