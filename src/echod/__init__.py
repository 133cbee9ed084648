"""echod: a JSON echo API with everything production needs around it.

The public API is small: :func:`main` runs the service as the ``echod`` command does,
:func:`load_settings` builds its :class:`Settings`, and :func:`create_app` builds the
RSGI application of one worker process. Everything else is internal.

Importing the package loads only the version. Each name above is imported on first
use, so ``import echod.cli`` stays light (no server, no metrics library) until it serves.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from echod.version import __version__

if TYPE_CHECKING:
    from echod.app import create_app
    from echod.cli import main
    from echod.config import Settings, load_settings

__all__ = ["Settings", "__version__", "create_app", "load_settings", "main"]

_PUBLIC = {
    "Settings": "echod.config",
    "create_app": "echod.app",
    "load_settings": "echod.config",
    "main": "echod.cli",
}


def __getattr__(name: str) -> Any:  # noqa: ANN401 - each public name has its own type
    """Import a public name from its module on first use (PEP 562)."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'echod' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
