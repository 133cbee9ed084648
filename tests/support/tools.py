"""Outside tools the tests run (curl, promtool, prometheus...): found, or skipped with a reason.

A missing tool skips the tests that need it, with a message naming the package that
brings it; when ``CI`` is set, the same case fails instead, so CI never skips silently.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

__all__ = ["require_tool"]


def require_tool(name: str, package: str) -> str:
    """Return the path of the tool ``name``, found in the virtualenv or on ``PATH``.

    Missing, it fails the test when ``CI`` is set and skips it otherwise; either way the
    message names the package that brings it.
    """
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(name, path=search)
    if found:
        return found
    message = f"{name} is missing: it comes with the {package} (make test installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
