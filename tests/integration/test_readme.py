"""The README's examples, run as written against echod on its default ports."""

from __future__ import annotations

import itertools
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from echod.settings.config import OPTIONS
from tests.support.processes import Echod
from tests.support.tools import require_tool

README = Path(__file__).parents[2] / "README.md"
DEFAULT_PORTS = (3000, 10000)


def examples() -> list[tuple[str, str]]:
    """Each ``curl`` line of the README with the ``# output`` lines under it."""
    lines = README.read_text().splitlines()
    found = []
    for n, line in enumerate(lines[:-1]):
        output = list(itertools.takewhile(lambda text: text.startswith("# "), lines[n + 1 :]))
        if line.startswith("curl ") and output:
            found.append((line, "\n".join(text.removeprefix("# ") for text in output)))
    assert len(found) >= 2, "the README lost its curl examples"
    return found


def ports_free() -> bool:
    """Whether echod's default ports can be bound.

    They are bound as a server binds them, so that connections lingering in TIME_WAIT
    from an earlier run do not count.
    """
    for port in DEFAULT_PORTS:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                return False
    return True


@pytest.fixture(scope="module")
def default_echod() -> Any:
    """echod started with no arguments at all, as make run starts it."""
    if not ports_free():
        if os.environ.get("CI"):
            pytest.fail(f"ports {DEFAULT_PORTS} are in use; the README examples need them")
        pytest.skip(f"ports {DEFAULT_PORTS} are in use (is make run going?)")
    echod = Echod(port=3000, tls=True, tls_port=10000)
    echod.args = []  # exactly `echod`, as the README runs it
    yield echod.start()
    echod.close()


@pytest.mark.usefixtures("default_echod")
@pytest.mark.parametrize(("command", "expected"), examples(), ids=lambda text: text[:40])
def test_example_prints_what_the_readme_says(command: str, expected: str) -> None:
    """The command, run by a shell as written, prints the documented output."""
    require_tool("curl", "Debian package curl")
    if "| jq " in command:
        require_tool("jq", "Debian package jq")
    # The README's own command line, through a shell, exactly as a reader would run it.
    done = subprocess.run(  # noqa: S602
        command, shell=True, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


def python_examples() -> list[tuple[str, str]]:
    """Each ```python block of the README whose last line is the ``# output`` it prints."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    found = []
    for block in blocks:
        *code, last = block.rstrip("\n").splitlines()
        if last.startswith("# "):
            found.append(("\n".join(code) + "\n", last.removeprefix("# ")))
    assert found, "the README lost its Python example"
    return found


@pytest.mark.usefixtures("default_echod")
@pytest.mark.parametrize(("code", "expected"), python_examples(), ids=lambda text: text[:30])
def test_python_example_prints_what_the_readme_says(code: str, expected: str) -> None:
    """The Python example, run as written with the websockets package, prints its output."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


def test_configuration_table_lists_every_setting() -> None:
    """Each flag and variable of echod has its row in the README."""
    text = README.read_text()
    for option in OPTIONS:
        assert re.search(rf"\| `{option.flag}` \| `{option.env}` \|", text), option.flag
