"""Runtime: what one echod instance shares across its processes, in one private directory.

echod makes a private runtime directory when it starts and removes it when it stops,
whatever the exit. It lives on /dev/shm when that can be used (memory, never written to
disk), else in ``--runtime-dir``; without one, echod says in one warning line that it
uses the temporary directory instead, since the directory holds the TLS key. Only its
owner can enter it::

    echod-<pid>-<random>/   <pid> is the process that made it (the instance, or the supervisor)
    ├── owner               that process's pid and start time
    ├── ready               one byte that every process reads: 0 ready, 1 draining
    ├── metrics             the metric slots, one per serving process
    ├── reloads             the record of reloads
    ├── state               the scenarios' attempts and buckets (SQLite), with state-journal
    │                       and state.lock (none with --state redis://...)
    ├── users               the htpasswd text of the users in service
    ├── tls.pem             the certificate chain in service, then its private key
    ├── client-ca.pem       the CA of client certificates, when one is set
    └── jwks.json           the key set of bearer tokens, when one is set

The metric slots and the record of reloads are files of
:mod:`echod.telemetry.metric_store`, and the state is :mod:`echod.state.local`'s: every
byte of them is allocated when the directory is made, so a filesystem too full for them
is an error at start (:class:`RuntimeSpaceError`), never a SIGBUS later. Serving processes receive a
:class:`RuntimeRef`, small and picklable, and attach to it. The material in service
(:mod:`echod.instance.material`) is published here at start and on every reload, and a
serving process reads it from here. A directory whose owner is gone (killed, so it
could not clean up) is removed by the next echod that starts, since it may hold a
private key; one whose owner still runs is never touched.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from echod.procfs import alive, start_time
from echod.settings.config import ConfigError
from echod.state import local
from echod.telemetry import metric_store

if TYPE_CHECKING:
    from echod.instance.material import Material
    from echod.telemetry.metric_layout import Layout

__all__ = [
    "Readiness",
    "Runtime",
    "RuntimeRef",
    "RuntimeSpaceError",
    "TlsFiles",
    "remove_stale",
    "runtime_root",
]

_SHM = Path("/dev/shm")  # noqa: S108 - memory-backed, and private to the directory made in it
_PREFIX = "echod-"
_OWNER, _READY, _METRICS, _RELOADS, _STATE = "owner", "ready", "metrics", "reloads", "state"
_USERS, _TLS, _CLIENT_CA, _JWKS = "users", "tls.pem", "client-ca.pem", "jwks.json"


class RuntimeSpaceError(ConfigError):
    """The runtime directory cannot be made: no room, or no place that can be written."""


def runtime_root(chosen: Path | None) -> tuple[Path, str | None]:
    """Where the runtime directory goes, and a warning when it is not where it should be.

    ``chosen`` is ``--runtime-dir``. Without it, /dev/shm, when it is a directory echod
    can write; otherwise the temporary directory, with the warning.
    """
    if chosen is not None:
        return chosen, None
    if _writable(_SHM):
        return _SHM, None
    fallback = Path(tempfile.gettempdir())
    return fallback, (
        f"{_SHM} cannot be written, so the runtime directory, which holds the TLS key, is "
        f"made in {fallback} (mode 0700); set --runtime-dir to choose where"
    )


class Readiness:
    """The ready byte: ready, or draining, for every process of the instance."""

    def __init__(self, path: Path) -> None:
        """Map the byte at ``path``."""
        with path.open("r+b") as file:
            self._map = mmap.mmap(file.fileno(), 1)

    def is_ready(self) -> bool:
        """Whether the instance takes new work."""
        return self._map[0] == 0

    def drain(self) -> None:
        """Mark the instance as shutting down, for every process."""
        self._map[0] = 1


@dataclass(frozen=True, slots=True)
class RuntimeRef:
    """What a worker needs to attach to its instance's runtime: small and picklable."""

    directory: Path
    supervisor: int
    layout: Layout
    #: The instance's id (a random UUID, made at start), the same in all its workers.
    instance: str
    #: Whether the directory holds the state (it does unless --state names a server).
    state: bool = True

    @property
    def state_path(self) -> Path:
        """The file of the state that the instance's processes share."""
        return self.directory / _STATE


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Where granian finds the certificate and key in service, and the client CA."""

    cert: Path
    key: Path
    client_ca: Path | None


class Runtime:
    """One instance's shared state: the ready byte, the counts and the material, mapped."""

    def __init__(self, ref: RuntimeRef) -> None:
        """Attach to the runtime ``ref`` names (in a worker, or in the supervisor)."""
        self.ref = ref
        self.readiness = Readiness(ref.directory / _READY)
        self.store = metric_store.MetricsStore(ref.directory / _METRICS, ref.layout)
        self.reloads = metric_store.ReloadRecord(ref.directory / _RELOADS)

    @classmethod
    def create(cls, layout: Layout, slots: int, root: Path, *, state: bool = True) -> Runtime:
        """Make this process's runtime in ``root``, after removing those of instances gone.

        Every byte of its files is allocated now; with ``state``, the state's too.

        Raises:
            RuntimeSpaceError: ``root`` has no room for them, or cannot be written; the
                message names the path and the bytes needed. Nothing is left behind.
        """
        remove_stale(root)
        pid = os.getpid()
        needed = slots * layout.slot_size * 8 + metric_store.ReloadRecord.SIZE + 1
        if state:
            needed += local.STATE_BYTES + local.JOURNAL_BYTES
        try:
            directory = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{pid}-", dir=root))
        except OSError as error:
            raise RuntimeSpaceError(
                f"{root}: the runtime directory cannot be made there: {error.strerror}; "
                "set --runtime-dir to a directory echod can write"
            ) from None
        try:
            (directory / _OWNER).write_text(f"{pid} {start_time(pid)}\n")
            metric_store.reserve(directory / _READY, 1)
            metric_store.MetricsStore.create(directory / _METRICS, layout, slots).close()
            metric_store.ReloadRecord.create(directory / _RELOADS).close()
            if state:
                local.create(directory / _STATE)
        except OSError as error:
            shutil.rmtree(directory, ignore_errors=True)
            raise RuntimeSpaceError(
                f"{root}: {needed} bytes are needed for the runtime directory, and it "
                f"failed: {error.strerror}; free some room or set --runtime-dir"
            ) from None
        return cls(RuntimeRef(directory, pid, layout, str(uuid.uuid4()), state))

    def publish(self, material: Material) -> None:
        """Put ``material`` in service for the workers that start from now on.

        Each file is replaced in one step (a rename), so that a worker never reads half
        of one; the certificate chain and its key share one file, so that a worker never
        pairs a certificate with another one's key.
        """
        pair = None
        if material.tls_cert is not None and material.tls_key is not None:
            pair = material.tls_cert.rstrip(b"\n") + b"\n" + material.tls_key
        self._replace(_USERS, material.users)
        self._replace(_JWKS, material.jwks)
        self._replace(_CLIENT_CA, material.tls_client_ca)
        self._replace(_TLS, pair)

    def users(self) -> bytes:
        """The htpasswd text of the users in service."""
        return (self.ref.directory / _USERS).read_bytes()

    def jwks(self) -> bytes | None:
        """The key set of bearer tokens in service, or None when none is set."""
        path = self.ref.directory / _JWKS
        return path.read_bytes() if path.exists() else None

    def tls_material(self) -> bytes | None:
        """The certificate, key and client CA in service, as bytes, or None without them.

        Two readings differ when the HTTPS server must be replaced to serve what is new.
        """
        tls, client_ca = self.ref.directory / _TLS, self.ref.directory / _CLIENT_CA
        if not tls.exists():
            return None
        return tls.read_bytes() + (client_ca.read_bytes() if client_ca.exists() else b"")

    def tls_files(self) -> TlsFiles:
        """Where the certificate, its key and the client CA in service are, for granian.

        The paths stay the same from one reload to the next; their content changes.
        """
        tls, client_ca = self.ref.directory / _TLS, self.ref.directory / _CLIENT_CA
        return TlsFiles(tls, tls, client_ca if client_ca.exists() else None)

    def remove(self) -> None:
        """Unmap everything and remove the directory (the supervisor, as it stops)."""
        self.store.close()
        self.reloads.close()
        shutil.rmtree(self.ref.directory, ignore_errors=True)

    def _replace(self, name: str, content: bytes | None) -> None:
        """Make ``name`` hold ``content``, readable by the owner only; None removes it."""
        path = self.ref.directory / name
        if content is None:
            path.unlink(missing_ok=True)
            return
        fresh = path.with_name(f"{name}.new")
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        fresh.replace(path)


def remove_stale(root: Path) -> list[Path]:
    """Remove the runtime directories under ``root`` whose supervisor is gone; return them."""
    removed = []
    for directory in root.glob(f"{_PREFIX}*-*"):
        with contextlib.suppress(OSError, ValueError):
            pid, started = (directory / _OWNER).read_text().split()
            if not alive(int(pid)) or str(start_time(int(pid))) != started:
                shutil.rmtree(directory)
                removed.append(directory)
    return removed


def _writable(directory: Path) -> bool:
    return directory.is_dir() and os.access(directory, os.W_OK | os.X_OK)
