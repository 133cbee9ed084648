"""The audit through nginx, HAProxy and Caddy, each shipped and default, against the matrix.

The expected results are ``tests/proxies/expected.yaml``, which docs/proxies.md
publishes. Each cell is its own test, so that a change shows exactly which check of
which proxy moved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from echod.audit.checks import CHECKS, RELOAD_CHECKS
from tests.proxies.support import KINDS, expected_matrix

if TYPE_CHECKING:
    from tests.proxies.conftest import Audited

pytestmark = pytest.mark.proxies

EXPECTED = expected_matrix()


def cells() -> list[Any]:
    """Every (proxy, configuration, check) of the expected matrix."""
    return [
        pytest.param(kind, configuration, name, id=f"{kind}-{configuration}-{name}")
        for kind in KINDS
        for configuration, results in EXPECTED[kind].items()
        for name in results
    ]


@pytest.mark.parametrize(("kind", "configuration", "name"), cells())
def test_the_check_gets_its_expected_result(
    audits: dict[tuple[str, str], Audited], kind: str, configuration: str, name: str
) -> None:
    """The check's result is the one the matrix expects; its evidence says why if not."""
    audited = audits[kind, configuration]
    assert audited.report, f"the audit did not run: {audited.error}"
    check = audited.check(name)
    expected = EXPECTED[kind][configuration][name]
    allowed = expected if isinstance(expected, list) else [expected]
    assert check["result"] in allowed, (
        f"{check['result']}: {check['detail']}; sent {check['sent']}; arrived {check['arrived']}"
    )


@pytest.mark.parametrize("kind", KINDS)
def test_every_check_ran_and_the_exit_status_says_so(
    audits: dict[tuple[str, str], Audited], kind: str
) -> None:
    """Shipped: every check of the audit and of --include reload, none failed, exit 0.

    Default: the fifteen checks; some fail, and the audit exits 1.
    """
    shipped, default = audits[kind, "shipped"], audits[kind, "default"]
    assert [entry.name for entry in (*CHECKS, *RELOAD_CHECKS)] == list(shipped.results())
    assert [entry.name for entry in CHECKS] == list(default.results())
    assert shipped.status == 0, shipped.report
    assert "fail" not in shipped.results().values()
    assert default.status == 1
