"""Container fixtures: podman's settings, the image, and a clean slate of test containers."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from tests.containers.support import IMAGE, Container, podman_status, remove_leftovers
from tests.deploy.support import DEPLOY

if TYPE_CHECKING:
    from collections.abc import Iterator

# make exports it; set here too, so that pytest -m containers runs alone.
os.environ.setdefault("CONTAINERS_CONF", str(DEPLOY / "podman" / "containers.conf"))


@pytest.fixture(scope="session", autouse=True)
def image() -> Iterator[str]:
    """The image make image built; leftovers of a killed run are removed before and after."""
    status, output = podman_status("image", "exists", IMAGE)
    if status != 0:
        pytest.fail(f"{IMAGE} is missing ({output.strip()}): make test-containers builds it")
    remove_leftovers()
    yield IMAGE
    remove_leftovers()


@pytest.fixture(scope="module")
def container() -> Iterator[Container]:
    """echod's image run as the issue asks: a read-only root, HTTP and HTTPS published."""
    made = Container("--read-only", "--sysctl", "net.ipv4.tcp_migrate_req=1")
    try:
        yield made.start()
    finally:
        made.remove()
