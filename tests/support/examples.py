"""The examples of the documents: fenced blocks, the commands in them and what they print.

A document shows what an example prints under it, as comment lines: ``# `` under a
command of a ``bash`` block, ``# `` at the end of a ``python`` block, ``// `` at the end
of a ``js`` block. A ``bash`` block that shows any output is a script to run, one
command at a time; ``make run ARGS="..."`` in it stands for echod started with those
flags. ``nginx`` blocks are proxy configurations that examples send requests through.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DOCUMENTS",
    "REPO",
    "Block",
    "Code",
    "Command",
    "Script",
    "blocks",
    "code_examples",
    "nginx_servers",
    "scripts",
    "unshown",
]

REPO = Path(__file__).resolve().parents[2]
#: Every document whose examples the tests run.
DOCUMENTS = (
    REPO / "README.md",
    REPO / "DEVELOPMENT.md",
    *sorted((REPO / "docs").glob("*.md")),
)
#: The commands whose output a document must show, so that the tests run them.
SHOWN_COMMANDS = ("curl", "websocat")

_FENCE = re.compile(r"^```(\S*)\s*$")
_MAKE_RUN = re.compile(r'^make run(?: ARGS="([^"]*)")?\s*(?:#.*)?$')
_COMMENT_PREFIX = {"python": "#", "js": "//"}


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced block of a document: its language and lines, and where it starts."""

    document: Path
    line: int
    language: str
    lines: tuple[str, ...]

    @property
    def where(self) -> str:
        """``README.md:42``: the document and the line of the opening fence."""
        return f"{self.document.relative_to(REPO)}:{self.line}"


@dataclass(frozen=True, slots=True)
class Command:
    """A command line of a ``bash`` block, and the output shown under it (None: none shown)."""

    line: str
    output: str | None
    #: echod's flags when the line is ``make run``, else None.
    echod_args: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Script:
    """A ``bash`` block that shows output: its commands, run in order."""

    block: Block
    commands: tuple[Command, ...]


@dataclass(frozen=True, slots=True)
class Code:
    """A ``python`` or ``js`` block and what it prints."""

    block: Block
    code: str
    output: str


def blocks(document: Path) -> list[Block]:
    """The fenced blocks of ``document``, in order."""
    found: list[Block] = []
    opened: tuple[int, str] | None = None
    body: list[str] = []
    for number, line in enumerate(document.read_text().splitlines(), start=1):
        fence = _FENCE.match(line.strip())
        if opened is None and fence:
            opened, body = (number, fence[1]), []
        elif opened is not None and line.strip() == "```":
            found.append(Block(document, opened[0], opened[1], tuple(body)))
            opened = None
        elif opened is not None:
            body.append(line)
    return found


def _commands(block: Block) -> list[Command]:
    """The command lines of a ``bash`` block, each with the ``# `` lines right under it."""
    commands: list[Command] = []
    lines = list(block.lines)
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        index += 1
        if not line or line.startswith("#"):
            continue
        while line.endswith("\\") and index < len(lines):  # a command continued
            line = line[:-1] + " " + lines[index].strip()
            index += 1
        shown: list[str] = []
        while index < len(lines) and lines[index].startswith("#"):
            shown.append(lines[index].removeprefix("#").removeprefix(" "))
            index += 1
        run = _MAKE_RUN.match(line)
        echod_args = tuple(shlex.split(run[1] or "")) if run else None
        commands.append(Command(line, "\n".join(shown) if shown else None, echod_args))
    return commands


def scripts() -> list[Script]:
    """Every ``bash`` block of the documents that shows what a command prints."""
    found = []
    for document in DOCUMENTS:
        for block in blocks(document):
            if block.language == "bash":
                commands = _commands(block)
                if any(command.output is not None for command in commands):
                    found.append(Script(block, tuple(commands)))
    return found


def unshown() -> list[str]:
    """Where a document has a ``curl`` or ``websocat`` command without its output."""
    found = []
    for document in DOCUMENTS:
        for block in blocks(document):
            if block.language not in {"bash", "sh", "shell", "console", ""}:
                continue
            for command in _commands(block):
                words = command.line.split()
                if words and words[0] in SHOWN_COMMANDS and command.output is None:
                    found.append(f"{block.where}: {command.line}")
    return found


def code_examples(language: str) -> list[Code]:
    """Every ``python`` or ``js`` block of the documents, with the output it ends with."""
    prefix = _COMMENT_PREFIX[language]
    found = []
    for document in DOCUMENTS:
        for block in blocks(document):
            if block.language != language:
                continue
            lines = list(block.lines)
            shown: list[str] = []
            while lines and lines[-1].startswith(prefix):
                shown.insert(0, lines.pop().removeprefix(prefix).removeprefix(" "))
            found.append(Code(block, "\n".join(lines) + "\n", "\n".join(shown)))
    return found


def nginx_servers() -> list[Block]:
    """The ``nginx`` blocks of the documents: server blocks that examples go through."""
    return [
        block for document in DOCUMENTS for block in blocks(document) if block.language == "nginx"
    ]
