"""Subcommands whose arguments are added only when one of them runs.

`gad --help` lists every verb from its name and help line alone; a verb's arguments are
added when argparse reaches that verb. So a verb may take its argparse choices from the
library it calls (`gad train --kind` from model.config, the single definition) while
`gad serve` and `gad bench service`, in the serving image that ships no model code, never
import it — and `gad train` there stops with a clear message (gad/cli.py) instead of a
traceback.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

Build = Callable[[argparse.ArgumentParser], None]


class Subcommands(argparse._SubParsersAction):
    """`add_subparsers` whose parsers are filled in by a `build` function on first use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._builders: dict[str, Build] = {}

    def add(self, name: str, build: Build, **kwargs: Any) -> argparse.ArgumentParser:
        """A subcommand `name` (kwargs as for add_parser: help, description); `build`
        adds its arguments and handler when it is the one being parsed."""
        parser = self.add_parser(name, **kwargs)
        self._builders[name] = build
        return parser

    def extend(self, name: str, more: Build) -> bool:
        """Run `more` after verb `name`'s own build (another module adding subcommands to
        a group: `group_of(parser)` finds it); False when there is no such verb."""
        first = self._builders.get(name)
        if first is None:
            return False

        def both(parser: argparse.ArgumentParser) -> None:
            first(parser)
            more(parser)

        self._builders[name] = both
        return True

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        assert isinstance(values, list)
        name = values[0]
        if self.dest is not argparse.SUPPRESS:
            setattr(namespace, self.dest, name)  # set early: an error while building names it
        build = self._builders.pop(name, None)
        if build is not None:
            build(self._name_parser_map[name])
        super().__call__(parser, namespace, values, option_string)


def add_subcommands(parser: argparse.ArgumentParser, **kwargs: Any) -> Subcommands:
    subcommands = parser.add_subparsers(action=Subcommands, **kwargs)
    assert isinstance(subcommands, Subcommands)
    return subcommands


def group_of(parser: argparse.ArgumentParser) -> Subcommands:
    """The subcommands `add_group` gave `parser`."""
    for action in parser._actions:
        if isinstance(action, Subcommands):
            return action
    raise LookupError(f"{parser.prog} has no subcommands")


def add_group(parser: argparse.ArgumentParser) -> Subcommands:
    """`gad VERB SUBCOMMAND ...`: VERB alone prints its help (the subcommands) and exits 2."""
    parser.set_defaults(handler=lambda _: parser.print_help() or 2)
    return add_subcommands(parser, dest="subcommand", metavar="SUBCOMMAND")
