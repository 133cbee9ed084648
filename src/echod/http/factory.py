"""Factory: one worker's app, built from the settings and the parts its processes share.

Everything a worker needs is made here once, at the worker's start: the access log,
the authenticator, the observer that feeds the metric slot and the log, and each
route's handler, which is paired with its route here. Nothing is made at import time.
The JOSE library is imported here only when a key set is given (``--jwt-jwks``).
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from echod import routes
from echod.http.app import EchoApp, Endpoint
from echod.http.auth import Authenticator
from echod.http.bearer import Tokens
from echod.http.cors import Cors
from echod.http.downloads import Downloads
from echod.http.drain import Drain
from echod.http.drip import Drips
from echod.http.echoes import Echoes
from echod.http.forward_auth import ForwardAuth
from echod.http.inspection import Inspector
from echod.http.openapi import openapi_document
from echod.http.probes import Probes
from echod.http.scenarios import AttemptLog, Scenarios
from echod.http.stream import Streams
from echod.http.websocket import SocketLimits, WebSockets
from echod.routes import ROUTES, UNMATCHED
from echod.telemetry.access_log import AccessLog
from echod.telemetry.line_writer import stdout_writer
from echod.telemetry.observer import Observer

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from echod.http.app import Annotate, Handler
    from echod.routes import Route
    from echod.settings.config import Settings
    from echod.state.model import Store
    from echod.telemetry.exposition import Registry
    from echod.telemetry.line_writer import LineWriter
    from echod.telemetry.metric_layout import Recorder

__all__ = ["create_app"]


def create_app(
    settings: Settings,
    *,
    users: Mapping[str, bytes],
    recorder: Recorder,
    registry: Registry,
    is_ready: Callable[[], bool],
    instance_id: str,
    log_writer: LineWriter | None = None,
    jwks: bytes | None = None,
    state: Store | None = None,
) -> EchoApp:
    """Build the application for one worker process from its settings and shared parts.

    ``instance_id`` names the echod instance, the same in all its workers. Request lines
    go through ``log_writer``, by default the process's writer of stdout. ``jwks`` is the
    key set in service (checked already), or None: no bearer tokens are taken. ``state``
    is where the scenarios' attempts and buckets are kept; without it, a request with
    ``key=`` or ``rate=`` gets a 503.
    """
    writer = stdout_writer() if log_writer is None else log_writer
    access_log = AccessLog(settings.log_level, writer)
    drain = Drain(is_ready)
    cors = Cors(settings.cors_origins) if settings.cors_origins else None
    instance = {"id": instance_id}
    if settings.expose_hostname:
        instance["hostname"] = socket.gethostname()
    probes = Probes(registry=registry, is_ready=is_ready, openapi=openapi_document())
    count = recorder.coding
    echoes = Echoes(count)
    tokens = _tokens(settings, jwks)
    forward_auth = ForwardAuth(routes.AUTH_VERIFY.path, tokens)
    scenarios = Scenarios(state, instance_id, recorder)
    handlers: dict[Route, Handler] = {
        routes.ECHO: echoes.json,
        routes.RAW: echoes.raw,
        routes.INSPECT: Inspector(
            instance=instance,
            max_delay=settings.max_delay,
            drain=drain,
            count=count,
            tokens=tokens,
            scenarios=scenarios,
        ),
        routes.STREAM: Streams(max_delay=settings.max_delay, drain=drain),
        routes.BYTES: Downloads(max_bytes=settings.max_download_bytes, count=count),
        routes.DRIP: Drips(max_delay=settings.max_delay, drain=drain, count=count),
        routes.ATTEMPTS: AttemptLog(scenarios, count),
        routes.HEALTH: probes.health,
        routes.READY: probes.ready,
        routes.METRICS: probes.metrics,
        routes.OPENAPI: probes.openapi,
    }
    if settings.auth_verify:
        handlers[routes.AUTH_VERIFY] = forward_auth
    annotations: dict[Route, Annotate] = {routes.AUTH_VERIFY: forward_auth.annotate}
    layout = recorder.layout
    endpoints = {
        route.path: Endpoint(
            route,
            handlers[route],
            layout.tally(route.path, timed=route.timed),
            annotations.get(route),
        )
        for route in ROUTES
        if route in handlers
    }
    websockets = WebSockets(
        recorder=recorder,
        drain=drain,
        limits=SocketLimits(
            max_message_bytes=settings.max_body_bytes,
            idle_timeout=settings.ws_idle_timeout,
            max_connections=settings.max_ws_connections,
            memory_limit=settings.ws_memory_limit,
        ),
        cors=cors,
    )
    return EchoApp(
        endpoints=endpoints,
        unmatched=Endpoint(None, None, layout.tally(UNMATCHED)),
        authenticator=Authenticator(users, tokens=tokens),
        access_log=access_log,
        observer=Observer(access_log, recorder),
        websockets=websockets,
        cors=cors,
        drain=drain,
        max_body_bytes=settings.max_body_bytes,
        body_timeout=settings.body_timeout,
        count_coding=count,
    )


def _tokens(settings: Settings, jwks: bytes | None) -> Tokens | None:
    """The verifier of bearer tokens with the key set ``jwks``, or None without one."""
    if jwks is None:
        return None
    from echod.http.keyset import KeySet, Policy  # noqa: PLC0415 - JOSE, only when used

    policy = Policy(settings.jwt_issuers, settings.jwt_audiences, settings.jwt_leeway)
    return Tokens(KeySet.parse(jwks), policy)
