"""Every YAML file of the repository passes yamllint."""

from __future__ import annotations

from tests.deploy.support import REPO, run_tool
from tests.support.tools import require_tool


class TestYamllint:
    def test_every_yaml_file_is_clean(self) -> None:
        """yamllint --strict over the repository (as .yamllint.yaml says) reports nothing."""
        yamllint = require_tool("yamllint", "PyPI package yamllint (in the dev extras)")
        done = run_tool(yamllint, "--strict", "--format", "parsable", ".")
        assert done.returncode == 0, done.stdout + done.stderr

    def test_it_sees_the_deployment_files(self) -> None:
        """The files yamllint checks include the deployment's, so none is ignored by mistake."""
        yamllint = require_tool("yamllint", "PyPI package yamllint (in the dev extras)")
        listed = run_tool(yamllint, "--list-files", ".").stdout.split()
        expected = {str(path.relative_to(REPO)) for path in REPO.glob("deploy/**/*.yaml")}
        assert expected
        assert expected <= {name.removeprefix("./") for name in listed}
