"""echod: a JSON echo API with everything production needs around it.

The public API is small: :func:`echod.cli.main` runs the service as the ``echod``
command does, :func:`echod.settings.config.load_settings` builds its
:class:`echod.settings.config.Settings`, and :func:`echod.http.factory.create_app`
builds the RSGI application of one worker process. Everything else is internal.

The package is in layers, each of which imports only those below it (``make lint``
checks it): the entry points (:mod:`echod.cli`, :mod:`echod.passwd`,
:mod:`echod.healthcheck`), then :mod:`echod.instance`, :mod:`echod.http`,
:mod:`echod.telemetry`, :mod:`echod.settings`, and the leaves :mod:`echod.routes`,
:mod:`echod.procfs` and :mod:`echod.version`.

Importing the package loads nothing but the version, so ``import echod.cli`` stays
light (no server, no metrics library) until it serves.
"""

from echod.version import __version__

__all__ = ["__version__"]
