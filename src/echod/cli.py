"""CLI: the ``echod`` command. Parses its settings, then serves until told to stop.

Exit status: 0 after a clean shutdown, 1 when serving fails (a port in use, a listener
that dies), 2 for bad settings. Setting errors go to stderr; everything else is a JSON
line on stdout.

Two subcommands do something else instead of serving:

- ``echod passwd FILE USER`` adds a user to an htpasswd file (:mod:`echod.passwd`);
- ``echod healthcheck`` takes the same settings and asks the echod they describe for
  ``/health`` (:mod:`echod.healthcheck`): 0 if it answers 200, 1 otherwise;
- ``echod audit --through URL`` checks what the proxy at URL does to requests on their
  way to the echod behind it (:mod:`echod.audit`): 0 if no check fails, 1 otherwise.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

from echod import healthcheck
from echod.passwd import passwd
from echod.settings.config import ConfigError, load_settings
from echod.telemetry.event_log import configure_logging
from echod.telemetry.line_writer import stdout_writer

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["main"]

EXIT_FAILURE = 1
EXIT_CONFIG = 2
#: Seconds the last log lines may take to be written as echod exits.
FINAL_FLUSH = 1.0

log = logging.getLogger("echod")


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run echod with ``argv`` (default: the command line) and ``environ`` (default: os.environ)."""
    open_standard_descriptors()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["passwd"], ["healthcheck"], ["audit"]):
        return _subcommand(argv[0], argv[1:], environ)
    try:
        settings = load_settings(argv, environ)
    except ConfigError as error:
        return _config_error(error)
    except SystemExit as done:  # --help and --version
        return int(done.code or 0)
    log_config = configure_logging(settings.log_level, settings.log_buffer_bytes)
    try:
        from echod.instance import allocators  # noqa: PLC0415 - only when serving

        allocators.tune()  # before granian is imported: its allocator reads the setting
        from echod.instance.server import serve  # noqa: PLC0415 - imports granian, only when serving

        return serve(settings, log_config=log_config)
    except ConfigError as error:
        return _config_error(error)
    finally:
        # The last lines (echod stopped) are written, unless stdout stalls: then they wait
        # no longer than this, and echod exits as it would have.
        stdout_writer().flush(FINAL_FLUSH)


def _subcommand(name: str, argv: list[str], environ: Mapping[str, str] | None) -> int:
    """Run ``echod passwd``, ``echod healthcheck`` or ``echod audit``."""
    if name == "passwd":
        return passwd(argv)
    if name == "healthcheck":
        return healthcheck.main(argv, environ)
    from echod import audit  # noqa: PLC0415 - never loaded by a serving process

    return audit.main(argv)


def open_standard_descriptors() -> None:
    """Make descriptors 0, 1 and 2 valid before any file is opened: /dev/null where closed.

    Started with stdout closed (``>&-``), the first file echod opened would get
    descriptor 1, and every log line would be written into it. Python then also starts
    with ``sys.stdout`` (or ``stdin``, ``stderr``) set to None: each gets its descriptor.
    """
    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDONLY if fd == 0 else os.O_WRONLY)
            if null != fd:  # the lower ones are open, so this is the first free one: fd
                os.dup2(null, fd)
                os.close(null)
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", closefd=False))  # noqa: SIM115


def _config_error(error: ConfigError) -> int:
    print(f"echod: error: {error}", file=sys.stderr)  # noqa: T201 - the CLI's own message
    print("echod: run 'echod --help' for the settings", file=sys.stderr)  # noqa: T201
    return EXIT_CONFIG
