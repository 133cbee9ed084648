"""Transports: an HTTP client for each way echod is reached, HTTP/1.1 and HTTP/2, plain and TLS."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.support.users import AUTH

if TYPE_CHECKING:
    from tests.support.processes import Echod

__all__ = ["TRANSPORTS", "client", "transports"]

#: Each transport's name and the HTTP version its answers come over, as httpx names it.
TRANSPORTS = {
    "http1.1": "HTTP/1.1",
    "h2c": "HTTP/2",
    "https-http1.1": "HTTP/1.1",
    "https-h2": "HTTP/2",
}


def client(echod: Echod, transport: str, **options: Any) -> httpx.Client:
    """A client of ``echod`` over ``transport``, authenticated as the demo user.

    h2c is HTTP/2 with prior knowledge on the plain port; the HTTPS ones trust anything,
    since the development certificate is self-signed.
    """
    options = {"auth": AUTH, "timeout": 30, **options}
    if transport == "http1.1":
        return httpx.Client(base_url=echod.url, **options)
    if transport == "h2c":
        return httpx.Client(base_url=echod.url, http1=False, http2=True, **options)
    http2 = transport == "https-h2"
    return httpx.Client(
        base_url=echod.tls_url,
        http1=not http2,
        http2=http2,
        verify=False,  # noqa: S501 - the development certificate is self-signed
        **options,
    )


def transports() -> pytest.MarkDecorator:
    """Parametrize a test over every transport (the echod must have HTTPS)."""
    return pytest.mark.parametrize("transport", list(TRANSPORTS))
