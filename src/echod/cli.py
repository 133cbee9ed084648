"""CLI: the ``echod`` command. Parses its settings, then serves until told to stop.

Exit status: 0 after a clean shutdown, 1 when serving fails (a port in use, a listener
that dies), 2 for bad settings. Setting errors go to stderr; everything else is a JSON
line on stdout.

Two subcommands do something else instead of serving:

- ``echod passwd FILE USER`` adds a user to an htpasswd file (:mod:`echod.passwd`);
- ``echod healthcheck`` takes the same settings and asks the echod they describe for
  ``/health`` (:mod:`echod.healthcheck`): 0 if it answers 200, 1 otherwise.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from echod import healthcheck
from echod.passwd import passwd
from echod.settings.config import ConfigError, load_settings
from echod.telemetry.access_log import configure_logging

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["main"]

EXIT_FAILURE = 1
EXIT_CONFIG = 2

log = logging.getLogger("echod")


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run echod with ``argv`` (default: the command line) and ``environ`` (default: os.environ)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["passwd"]:
        return passwd(argv[1:])
    if argv[:1] == ["healthcheck"]:
        return healthcheck.main(argv[1:], environ)
    try:
        settings = load_settings(argv, environ)
    except ConfigError as error:
        return _config_error(error)
    except SystemExit as done:  # --help and --version
        return int(done.code or 0)
    log_config = configure_logging(settings.log_level)
    try:
        from echod.instance.server import serve  # noqa: PLC0415 - imports granian, only when serving

        return serve(settings, log_config=log_config)
    except ConfigError as error:
        return _config_error(error)


def _config_error(error: ConfigError) -> int:
    print(f"echod: error: {error}", file=sys.stderr)  # noqa: T201 - the CLI's own message
    print("echod: run 'echod --help' for the settings", file=sys.stderr)  # noqa: T201
    return EXIT_CONFIG
