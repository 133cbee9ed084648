"""Worker: the app of one worker process, built from what the instance has in service."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

from echod.http.factory import create_app
from echod.instance.runtime import Runtime
from echod.instance.users import parse_users
from echod.telemetry.collectors import build_registry
from echod.version import __version__

if TYPE_CHECKING:
    from echod.http.app import EchoApp
    from echod.instance.runtime import RuntimeRef
    from echod.settings.config import Settings

__all__ = ["worker_app"]


def worker_app(settings: Settings, runtime: RuntimeRef) -> EchoApp:
    """Build the app inside a worker process (granian calls this once per worker).

    The users and the key set are those in service now: a reload reaches a worker by
    replacing it.
    """
    shared = Runtime(runtime)
    app = create_app(
        settings,
        users=parse_users(shared.users().decode(), "the users in service"),
        recorder=shared.store.claim(),
        registry=build_registry(
            shared.store,
            root_pid=runtime.supervisor,
            version=__version__,
            reloads=shared.reloads,
        ),
        is_ready=shared.readiness.is_ready,
        instance_id=runtime.instance,
        jwks=shared.jwks(),
    )
    # Everything made so far lives as long as the worker: keep it out of the garbage
    # collector's way, which shortens the pauses that full collections cause (p99).
    gc.collect()
    gc.freeze()
    return app
