"""The documents' examples, run as written, and the README's configuration table.

Every ``bash`` block that shows what a command prints is run one command at a time, in a
scratch directory, against echod on its default ports (3000 and 10000) as a reader runs
it beside ``make run``; ``make run ARGS="..."`` starts echod with those flags for the
rest of its block. The scratch directory holds the files the examples name: a CA
(``ca.pem``), a server certificate for localhost (``server.pem``, ``server-key.pem``)
and a client certificate (``client.pem``, ``client-key.pem``), both from that CA. The
``nginx`` blocks run as one nginx while the examples that name their ports run. Python
and JavaScript blocks run with the output they end with. A ``curl`` or ``websocat``
command whose output a document does not show fails: every example is run.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest
import trustme

from echod.settings.config import OPTIONS
from tests.support.examples import (
    DOCUMENTS,
    REPO,
    Code,
    Script,
    blocks,
    code_examples,
    nginx_servers,
    scripts,
    unshown,
)
from tests.support.processes import START_TIMEOUT, Echod
from tests.support.tools import nginx_conf, require_tool

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

DEFAULT_PORTS = (3000, 10000)


def ports_free(ports: tuple[int, ...]) -> bool:
    """Whether ``ports`` can be bound, as a server binds them (TIME_WAIT does not count)."""
    for port in ports:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                return False
    return True


def need_ports(ports: tuple[int, ...]) -> None:
    """Skip (fail with CI set) unless the examples' fixed ports are free."""
    if not ports_free(ports):
        message = f"ports {ports} are in use (is make run going?); the examples need them"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def serving_ports(args: tuple[str, ...]) -> list[int]:
    """The default ports that echod started with ``args`` listens on (``0`` turns one off)."""
    given = dict(itertools.pairwise(args))
    return [
        port
        for flag, port in zip(("--port", "--tls-port"), DEFAULT_PORTS, strict=True)
        if given.get(flag) != "0"
    ]


def listening(port: int) -> bool:
    """Whether something accepts connections on ``port`` of the loopback address."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


class Serving:
    """The one echod the examples talk to, started again when a block asks other flags."""

    def __init__(self, workspace: Path) -> None:
        """Run echod in ``workspace``, where the examples' files are."""
        self.workspace = workspace
        self.args: tuple[str, ...] | None = None
        self.echod: Echod | None = None

    def ensure(self, args: tuple[str, ...]) -> None:
        """Have echod serve with exactly ``args`` (``make run ARGS=...``) on its ports."""
        if self.echod is not None and self.args == args:
            return
        self.stop()
        need_ports(DEFAULT_PORTS)
        echod = Echod(
            port=DEFAULT_PORTS[0], tls=True, tls_port=DEFAULT_PORTS[1], cwd=self.workspace
        )
        echod.args = list(args)  # exactly `echod ARGS`, as make run starts it
        self.echod, self.args = echod.start(wait=False), args
        # Its ready event, then its ports: the event can come a moment before they listen.
        deadline = time.monotonic() + START_TIMEOUT
        while not echod.lines_starting("echod ready") or not all(
            listening(port) for port in serving_ports(args)
        ):
            assert echod.process is not None
            if echod.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"echod {' '.join(args)} did not serve: {echod.stderr()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop echod, if it runs."""
        if self.echod is not None:
            self.echod.close()
        self.echod = self.args = None


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory the examples run in, with the certificates they name."""
    directory = tmp_path_factory.mktemp("examples")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    server = ca.issue_cert("localhost", "127.0.0.1", "::1")
    server.cert_chain_pems[0].write_to_path(str(directory / "server.pem"))
    server.private_key_pem.write_to_path(str(directory / "server-key.pem"))
    client = ca.issue_cert("client.example")
    client.cert_chain_pems[0].write_to_path(str(directory / "client.pem"))
    client.private_key_pem.write_to_path(str(directory / "client-key.pem"))
    return directory


@pytest.fixture(scope="module")
def serving(workspace: Path) -> Iterator[Serving]:
    """echod for the examples, always stopped at the end."""
    made = Serving(workspace)
    try:
        yield made
    finally:
        made.stop()


def listen_ports() -> tuple[int, ...]:
    """The ports the documents' nginx server blocks listen on."""
    ports = [
        int(port)
        for block in nginx_servers()
        for port in re.findall(r"listen (\d+);", "\n".join(block.lines))
    ]
    return tuple(ports)


@pytest.fixture(scope="module")
def proxies(workspace: Path) -> Iterator[None]:
    """nginx running the documents' server blocks, stopped at the end."""
    nginx = require_tool("nginx", "Debian package nginx")
    need_ports(listen_ports())
    servers = "\n".join("\n".join(block.lines) for block in nginx_servers())
    (workspace / "nginx.conf").write_text(nginx_conf(workspace, servers))
    process = subprocess.Popen(
        [nginx, "-p", str(workspace), "-c", "nginx.conf", "-e", "stderr"],
        cwd=workspace,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not all(not ports_free((port,)) for port in listen_ports()):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"nginx did not start: {process.communicate()[1].decode()}")
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.communicate(timeout=10)


def shell_env() -> dict[str, str]:
    """The environment of the examples: the virtualenv's commands (echod) come first."""
    return {
        **os.environ,
        "PATH": os.pathsep.join([str(sys.executable).rsplit("/", 1)[0], os.environ["PATH"]]),
    }


def printed(stdout: str) -> str:
    """What a terminal shows of ``stdout``: without carriage returns or the last newline."""
    return stdout.replace("\r\n", "\n").strip()


def test_every_command_shows_its_output() -> None:
    """Each curl or websocat command of the documents shows its output, so it is run."""
    assert unshown() == []


@pytest.mark.parametrize("script", scripts(), ids=lambda script: script.block.where)
def test_commands_print_what_the_document_shows(
    script: Script, serving: Serving, workspace: Path, request: pytest.FixtureRequest
) -> None:
    """Each command of the block, run by a shell as written, prints the output shown."""
    text = "\n".join(command.line for command in script.commands)
    require_tool("curl", "Debian package curl")
    if "| jq " in text:
        require_tool("jq", "Debian package jq")
    if any(f"localhost:{port}" in text for port in listen_ports()):
        request.getfixturevalue("proxies")
    if script.commands[0].echod_args is None:
        serving.ensure(())
    for command in script.commands:
        if command.echod_args is not None:
            assert command.output is None, f"make run shows no output: {command.line}"
            serving.ensure(command.echod_args)
            continue
        # The document's own command line, through a shell, exactly as a reader runs it.
        done = subprocess.run(
            ["bash", "-c", command.line],
            cwd=workspace,
            env=shell_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"{command.line}: {done.stderr}"
        assert printed(done.stdout) == (command.output or ""), command.line


@pytest.mark.parametrize("example", code_examples("python"), ids=lambda code: code.block.where)
def test_python_prints_what_the_document_shows(
    example: Code, serving: Serving, workspace: Path
) -> None:
    """The Python block, run as written (websockets is a development tool), prints its output."""
    assert example.output, f"{example.block.where}: a Python example ends with what it prints"
    serving.ensure(())
    done = subprocess.run(
        [sys.executable, "-c", example.code],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert printed(done.stdout) == example.output


@pytest.mark.parametrize("example", code_examples("js"), ids=lambda code: code.block.where)
def test_javascript_prints_what_the_document_shows(
    example: Code, serving: Serving, workspace: Path
) -> None:
    """The JavaScript block, run by Node as an ES module, prints its output."""
    assert example.output, f"{example.block.where}: a JavaScript example ends with what it prints"
    node = require_tool("node", "Debian package nodejs")
    serving.ensure(())
    done = subprocess.run(
        [node, "--input-type=module", "-e", example.code],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert printed(done.stdout) == example.output


def json_blocks() -> list[Any]:
    """Every ``json`` block of the documents."""
    return [
        pytest.param("\n".join(block.lines), id=block.where)
        for document in DOCUMENTS
        for block in blocks(document)
        if block.language == "json"
    ]


@pytest.mark.parametrize("text", json_blocks())
def test_json_blocks_are_json(text: str) -> None:
    """A log line or a problem shown as JSON parses as one JSON object."""
    assert isinstance(json.loads(text), dict)


def test_configuration_table_lists_every_setting() -> None:
    """Each flag and variable of echod has its row in the README."""
    text = (REPO / "README.md").read_text()
    for option in OPTIONS:
        assert re.search(rf"\| `{option.flag}` \| `{option.env}` \|", text), option.flag


def test_the_readme_stays_short() -> None:
    """At most 300 lines: usage, settings, a production checklist and links; docs/ has the rest."""
    assert len((REPO / "README.md").read_text().splitlines()) <= 300


def anchors(document: Path) -> set[str]:
    """The anchors GitHub makes of the document's headings (lower case, dashes)."""
    headings = re.findall(r"^#+ (.+)$", document.read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_links_name_files_and_sections_that_exist() -> None:
    """Every relative link names a file of the repository, and a heading of it if it says one."""
    broken = []
    for document in DOCUMENTS:
        text = re.sub(r"```.*?```", "", document.read_text(), flags=re.DOTALL)
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", text):
            if "://" in target:
                continue
            linked = (document.parent / target) if target else document
            if not linked.exists():
                broken.append(f"{document.relative_to(REPO)}: {target}")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{document.relative_to(REPO)}: {target}#{anchor}")
    assert broken == []
