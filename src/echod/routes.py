"""Routes: the one table of what echod serves, and what each route's requests go through.

Everything that depends on the set of routes reads it from :data:`ROUTES`: the app's
routing and its ``Allow`` header, the ``path`` label of the metrics, the methods the log
writes as they are, and the test that holds ``docs/openapi.yaml`` to the same table.
A route's path is also its ``path`` label in the metrics. A path may end in one
parameter, as OpenAPI writes it (``/api/bytes/{n}``): it matches any one non-empty
segment there, and the label stays the template, so that labels stay bounded. A route
may also take every path under it (``/auth/verify/...``, as Envoy's ext_authz calls it),
all counted under its own path.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ATTEMPTS",
    "AUTH_VERIFY",
    "BYTES",
    "DRIP",
    "ECHO",
    "HEALTH",
    "INSPECT",
    "KNOWN_METHODS",
    "METRICS",
    "OPENAPI",
    "RAW",
    "READY",
    "ROUTES",
    "STREAM",
    "UNMATCHED",
    "Route",
]

#: The methods of RFC 9110 and RFC 5789 (PATCH): counted and logged by name. Any other
#: method is counted under ``other``.
KNOWN_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
#: The metric label of a request to a path that no route has, so a scan adds no series.
UNMATCHED = "unmatched"


@dataclass(frozen=True, slots=True)
class Route:
    """One path, the methods it answers, and what its requests go through.

    Every method of a route needs basic auth, unless the route is a probe; so does any
    other method on the path (it gets its 405 after auth).
    """

    path: str
    methods: tuple[str, ...]
    #: A probe is answered before auth and is neither logged nor counted.
    probe: bool = False
    #: Whether the handler gets the request body, read within ``--max-body-bytes`` (413)
    #: and refused when it has a ``Content-Encoding`` (415).
    body: bool = False
    #: What a WebSocket on this path does with each message, "echo" or "raw", or None:
    #: the path takes no WebSocket. The upgrade is a GET.
    websocket: str | None = None
    #: Whether its durations go into the latency histogram. A route whose duration is
    #: what the client asks for (a delay, a stream, a download) is counted, but not timed, so it
    #: cannot set off the latency alerts.
    timed: bool = True
    #: Whether any method is answered, not only :attr:`methods` (which the API document
    #: lists): a forward-auth target gets the method of the request it is asked about.
    any_method: bool = False
    #: Whether every path under this one is this route too (``/auth/verify/a/b``).
    subtree: bool = False

    @property
    def prefix(self) -> str | None:
        """What a path matching a parameter route starts with (``/api/bytes/``), or None.

        A route has a parameter when its last segment is ``{name}``; an exact route has
        none.
        """
        head, _, last = self.path.rpartition("/")
        return f"{head}/" if last.startswith("{") and last.endswith("}") else None

    def argument(self, path: str) -> str:
        """The parameter's value in ``path``, a path this route matches: its last segment."""
        return path.rpartition("/")[2]

    @property
    def allow(self) -> str:
        """The ``Allow`` header of a 405 on this path (RFC 9110 section 10.2.1)."""
        return ", ".join(self.methods)


ECHO = Route("/api/echo", ("POST", "PUT"), body=True, websocket="echo")
RAW = Route("/api/raw", ("POST", "PUT"), body=True, websocket="raw")
INSPECT = Route(
    "/api/inspect", ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"), body=True, timed=False
)
STREAM = Route("/api/stream", ("GET", "HEAD"), timed=False)
BYTES = Route("/api/bytes/{n}", ("GET", "HEAD"), timed=False)
DRIP = Route("/api/drip", ("GET", "HEAD"), timed=False)
ATTEMPTS = Route("/api/attempts/{key}", ("GET", "HEAD", "DELETE"), timed=False)
#: The target of a proxy's forward auth (``--auth-verify``): its answer is the credentials'.
AUTH_VERIFY = Route(
    "/auth/verify",
    ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"),
    any_method=True,
    subtree=True,
)
HEALTH = Route("/health", ("GET", "HEAD"), probe=True)
READY = Route("/ready", ("GET", "HEAD"), probe=True)
METRICS = Route("/metrics", ("GET", "HEAD"), probe=True)
OPENAPI = Route("/openapi.json", ("GET", "HEAD"), probe=True)

ROUTES: tuple[Route, ...] = (
    ECHO, RAW, INSPECT, STREAM, BYTES, DRIP, ATTEMPTS, AUTH_VERIFY, HEALTH, READY, METRICS,
    OPENAPI,
)  # fmt: skip
