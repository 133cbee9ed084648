"""Announce: what a person, and a log shipper, are told once echod serves.

When every worker of every listener serves, the supervisor writes one JSON ``ready``
event on stdout, whatever the log level: where echod listens, a request to try and where
the API document is. When stderr is a terminal, the same facts also go there as a few
plain lines, for the person who just typed ``make run``. No password is ever logged, so
the event's request says ``PASSWORD``; only the terminal gets a demo user's password,
which is public anyway.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TextIO

from echod.telemetry.line_writer import stdout_writer
from echod.telemetry.log_line import event_line

if TYPE_CHECKING:
    from collections.abc import Sequence

    from echod.instance.listener import Listener
    from echod.settings.config import Settings

__all__ = ["announce_ready", "ready_facts"]

# Addresses that mean "every interface": a person reaches them as localhost.
_ANY = {"0.0.0.0", "::", ""}  # noqa: S104 - compared with, not bound to
_DEMO_USER, _DEMO_PASSWORD = "remarkablebob", "2rFtex"
_PASSWORD = "PASSWORD"  # noqa: S105 - the placeholder a log shows instead of one
_EXAMPLE = """'{"foo": "bar"}'"""


def ready_facts(settings: Settings, listeners: Sequence[Listener]) -> dict[str, Any]:
    """Where echod listens, a request to try, and where the API document is."""
    host = settings.host
    if host in _ANY:
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    urls = [f"{listener.name}://{host}:{listener.port}" for listener in listeners]
    first = urls[0]
    user = _DEMO_USER if settings.users_file is None else "USER"
    insecure = "-k " if first.startswith("https:") and settings.tls_cert is None else ""
    # As the README writes it: curl takes a bare host:port as plain HTTP.
    target = first.removeprefix("http://")
    return {
        "urls": urls,
        "try": f"curl {insecure}-u {user}:{_PASSWORD} -X POST {target}/api/echo --data {_EXAMPLE}",
        "openapi": f"{first}/openapi.json",
        "selfSigned": settings.tls_enabled and settings.tls_cert is None,
        "demoUsers": settings.users_file is None,
    }


def announce_ready(facts: dict[str, Any], stderr: TextIO | None = None) -> None:
    """Write the ``ready`` event on stdout; also the plain lines when ``stderr`` is a terminal."""
    stdout_writer().write(event_line("echod ready", "echod", facts))
    stderr = sys.stderr if stderr is None else stderr
    if not stderr.isatty():
        return
    lines = ["echod is ready:"]
    for url in facts["urls"]:
        note = (
            "  (self-signed certificate: curl -k)"
            if facts["selfSigned"] and url.startswith("https:")
            else ""
        )
        lines.append(f"  {url}{note}")
    example = facts["try"]
    if facts["demoUsers"]:  # public, and the terminal is not a log
        example = example.replace(f"{_DEMO_USER}:{_PASSWORD}", f"{_DEMO_USER}:{_DEMO_PASSWORD}")
    lines += [
        f"try:  {example}",
        f"API:  {facts['openapi']}",
        "Ctrl-C stops it.",
    ]
    stderr.write("\n".join(lines) + "\n")
    stderr.flush()
