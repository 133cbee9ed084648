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

__all__ = ["nginx_conf", "require_tool"]


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


def nginx_conf(directory: Path, http: str) -> str:
    """An nginx.conf that runs nginx as a test's process around the ``http`` block's lines.

    In the foreground, one process, with its pid, error log and temporary files in
    ``directory``; run it with ``nginx -p DIRECTORY -c FILE -e stderr``.
    """
    return f"""\
daemon off;
master_process off;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{}}
http {{
    access_log off;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
{http}
}}
"""
