"""Options: how a setting of the table (:data:`echod.settings.config.OPTIONS`) meets the CLI.

Each :class:`Option` names a setting's field; its flag (``--max-body-bytes``) and its
variable (``ECHOD_MAX_BODY_BYTES``) are derived from that name, so they cannot drift
apart. :mod:`echod.settings.config` reads them; this module only knows their shapes.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = ["Option", "OptionError", "build_parser", "parse_value"]


class OptionError(ValueError):
    """The command line cannot be parsed: an unknown flag, a missing value."""


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: its field, its parser, and how the command line gives it."""

    field: str
    parse: Callable[[str], Any]
    metavar: str
    help: str
    #: "value": ``--flag VALUE``; "switch": ``--flag`` alone, the variable a boolean;
    #: "list": ``--flag`` once per item, the variable a comma-separated list.
    kind: str = "value"
    #: How a bad value is shown in the error that names it: as given by default; a URL
    #: that may hold a password shows it hidden.
    shown: Callable[[str], str] | None = None

    @property
    def flag(self) -> str:
        """The command-line flag: the field's name, singular for a list."""
        name = self.field.removesuffix("s") if self.kind == "list" else self.field
        return "--" + name.replace("_", "-")

    @property
    def env(self) -> str:
        """The environment variable: ``ECHOD_`` and the field's name."""
        return "ECHOD_" + self.field.upper()


class _Parser(argparse.ArgumentParser):
    """An argument parser that raises instead of exiting, so ``main`` owns exit codes."""

    def error(self, message: str) -> NoReturn:
        raise OptionError(message)


def build_parser(
    options: Iterable[Option], *, prog: str, description: str, epilog: str, version: str
) -> argparse.ArgumentParser:
    """A parser of ``options``, each of which defaults to "not given"."""
    parser = _Parser(prog=prog, description=description, epilog=epilog)
    parser.add_argument("--version", action="version", version=version)
    for option in options:
        if option.kind == "switch":
            parser.add_argument(
                option.flag, dest=option.field, action="store_const", const="1", help=option.help
            )
        else:
            parser.add_argument(
                option.flag,
                dest=option.field,
                metavar=option.metavar,
                help=option.help,
                action="append" if option.kind == "list" else "store",
            )
    return parser


def parse_value(option: Option, raw: str | list[str]) -> Any:  # noqa: ANN401 - each option's type
    """``raw`` as the option's value; a list takes repeated flags or a comma-separated text.

    Raises:
        ValueError: a value is malformed; the message says what was expected.
    """
    if option.kind != "list":
        return option.parse(raw)  # type: ignore[arg-type]
    items = raw if isinstance(raw, list) else [item for item in raw.split(",") if item.strip()]
    return tuple(dict.fromkeys(option.parse(item) for item in items))
