"""Routes: the one table of what echod serves, and what each route's requests go through.

Everything that depends on the set of routes reads it from :data:`ROUTES`: the app's
routing and its ``Allow`` header, the ``path`` label of the metrics, the methods the log
writes as they are, and the test that holds ``docs/openapi.yaml`` to the same table.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "KNOWN_METHODS",
    "ROUTES",
    "UNMATCHED",
    "Route",
    "metric_paths",
    "route_for",
    "untimed_labels",
    "websocket_paths",
]

#: The methods of RFC 9110 and RFC 5789 (PATCH): counted and logged by name. Any other
#: method is counted under ``other``.
KNOWN_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
#: The metric label of a request to a path that no route has, so a scan adds no series.
UNMATCHED = "unmatched"


@dataclass(frozen=True, slots=True)
class Route:
    """One path, the methods it answers, and what its requests go through."""

    path: str
    methods: tuple[str, ...]
    #: The name of what answers it: an :class:`echod.http.app.EchoApp` method, or one of the
    #: handlers :func:`echod.http.factory.create_app` makes.
    handler: str
    #: Whether its methods need basic auth. Another method on the path always does.
    auth: bool = True
    #: A probe is answered before auth and is neither logged nor counted.
    probe: bool = False
    #: Whether the handler gets the request body, read within ``--max-body-bytes`` (413)
    #: and refused when it has a ``Content-Encoding`` (415).
    body: bool = False
    #: The route's ``path`` label in the metrics: its path, unless given.
    label: str = ""
    #: What a WebSocket on this path does with each message (a :mod:`echod.http.websocket`
    #: handler's name), or None: the path takes no WebSocket. The upgrade is a GET.
    websocket: str | None = None
    #: Whether its durations go into the latency histogram. A route whose duration is
    #: what the client asks for (a delay, a stream) is counted, but not timed, so that it
    #: cannot set off the latency alerts.
    timed: bool = True

    def __post_init__(self) -> None:
        """Label the route with its path when no label is given."""
        if not self.label:
            object.__setattr__(self, "label", self.path)

    @property
    def allow(self) -> str:
        """The ``Allow`` header of a 405 on this path (RFC 9110 section 10.2.1)."""
        return ", ".join(self.methods)


ROUTES: tuple[Route, ...] = (
    Route("/api/echo", ("POST", "PUT"), "echo", body=True, websocket="echo"),
    Route("/api/raw", ("POST", "PUT"), "raw", body=True, websocket="raw"),
    Route(
        "/api/inspect",
        ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"),
        "inspect",
        body=True,
        timed=False,
    ),
    Route("/api/stream", ("GET", "HEAD"), "stream", timed=False),
    Route("/health", ("GET", "HEAD"), "health", auth=False, probe=True),
    Route("/ready", ("GET", "HEAD"), "ready", auth=False, probe=True),
    Route("/metrics", ("GET", "HEAD"), "metrics", auth=False, probe=True),
    Route("/openapi.json", ("GET", "HEAD"), "openapi", auth=False, probe=True),
)

_BY_PATH = {route.path: route for route in ROUTES}


def route_for(path: str) -> Route | None:
    """The route of ``path`` (matched exactly), or None."""
    return _BY_PATH.get(path)


def metric_paths() -> tuple[str, ...]:
    """Every value of the metrics' ``path`` label: each route's, then :data:`UNMATCHED`."""
    return (*(route.label for route in ROUTES), UNMATCHED)


def untimed_labels() -> frozenset[str]:
    """The ``path`` labels of the routes left out of the latency histogram."""
    return frozenset(route.label for route in ROUTES if not route.timed)


def websocket_paths() -> tuple[str, ...]:
    """The ``path`` label of each route that takes WebSockets."""
    return tuple(route.label for route in ROUTES if route.websocket is not None)
