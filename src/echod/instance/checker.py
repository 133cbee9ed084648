"""Checker: the material is checked in a process of its own; serving never loads cryptography.

Checking a certificate and its key needs the cryptography library, about 16 MiB once
loaded, and a process cannot unload it. So echod runs the checks
(:mod:`echod.instance.checks`) in a short-lived interpreter, ``python -m
echod.instance.checker``: at start, where it also makes the development certificate, and
at each reload. The files' bytes, as echod read them, go to it on stdin, and the checked
material and its summary come back on stdout, as JSON. It takes about a tenth of a
second.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec

from echod.instance.material import Material, Reading, Summary
from echod.settings.config import ConfigError

__all__ = ["CHECK_TIMEOUT", "check", "main"]

#: Seconds the checker may take, its interpreter's start included.
CHECK_TIMEOUT = 30.0


class _Reading(msgspec.Struct, frozen=True):
    path: str
    identity: tuple[int, int, int] | None
    content: bytes | None
    error: str | None


class _Material(msgspec.Struct, frozen=True):
    users: bytes
    tls_cert: bytes | None = None
    tls_key: bytes | None = None
    tls_client_ca: bytes | None = None
    jwks: bytes | None = None


class _Summary(msgspec.Struct, frozen=True):
    users: int
    serial: str | None
    not_after: float | None
    jwt_keys: int | None = None


class _Request(msgspec.Struct, frozen=True):
    #: Whether HTTPS serves: a certificate and its key are needed.
    tls: bool
    snapshot: dict[str, _Reading]
    #: The material in service, for what no setting names (None at start).
    kept: _Material | None


class _Answer(msgspec.Struct, frozen=True):
    material: _Material | None = None
    summary: _Summary | None = None
    #: What is wrong with the files, naming the setting and the file.
    error: str | None = None


def check(
    tls: bool, snapshot: dict[str, Reading], kept: Material | None
) -> tuple[Material, Summary]:
    """Check what ``snapshot`` holds, with ``kept`` for the rest; return it and its summary.

    Raises:
        ConfigError: a file is not what its setting needs, or the checker failed.
    """
    request = _Request(
        tls=tls,
        snapshot={
            field: _Reading(str(reading.path), reading.identity, reading.content, reading.error)
            for field, reading in snapshot.items()
        },
        kept=None if kept is None else _Material(**_fields(kept)),
    )
    try:
        done = subprocess.run(
            [sys.executable, "-m", "echod.instance.checker"],
            input=msgspec.json.encode(request),
            capture_output=True,
            timeout=CHECK_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ConfigError(f"the files could not be checked: {error}") from None
    try:
        answer = msgspec.json.decode(done.stdout, type=_Answer)
    except msgspec.DecodeError:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        raise ConfigError(
            f"the files could not be checked: {said[-1] if said else done.returncode}"
        ) from None
    if answer.error is not None or answer.material is None or answer.summary is None:
        raise ConfigError(answer.error or "the files could not be checked")
    material = Material(**_fields(answer.material))
    told = answer.summary
    summary = Summary(told.users, told.serial, told.not_after, told.jwt_keys)
    return material, summary


def _fields(material: Material | _Material) -> dict[str, Any]:
    return {
        "users": material.users,
        "tls_cert": material.tls_cert,
        "tls_key": material.tls_key,
        "tls_client_ca": material.tls_client_ca,
        "jwks": material.jwks,
    }


def main() -> int:
    """Check the material on stdin and answer on stdout (the checker's process)."""
    from echod.instance.checks import build, summary  # noqa: PLC0415 - this process alone
    from echod.settings.config import Settings  # noqa: PLC0415

    request = msgspec.json.decode(sys.stdin.buffer.read(), type=_Request)
    snapshot = {
        field: Reading(Path(reading.path), reading.identity, reading.content, reading.error)
        for field, reading in request.snapshot.items()
    }
    kept = None if request.kept is None else Material(**_fields(request.kept))
    # Only whether HTTPS serves matters to the checks; port 0 turns it off.
    settings = Settings(tls_port=10000 if request.tls else 0)
    try:
        material = build(settings, snapshot, kept)
    except ConfigError as error:
        answer = _Answer(error=str(error))
    else:
        told = summary(material)
        answer = _Answer(
            material=_Material(**_fields(material)),
            summary=_Summary(told.users, told.serial, told.not_after, told.jwt_keys),
        )
    sys.stdout.buffer.write(msgspec.json.encode(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
