"""echod: a JSON echo API with everything production needs around it.

The public API is small: :func:`main` runs the service as the ``echod`` command does,
:func:`load_settings` builds its :class:`Settings`, and :func:`create_app` builds the
RSGI application of one worker process. Everything else is internal.
"""

__version__ = "0.1.0"

# The version comes first: the modules below read it.
from echod.app import create_app
from echod.cli import main
from echod.config import Settings, load_settings

__all__ = ["Settings", "__version__", "create_app", "load_settings", "main"]
