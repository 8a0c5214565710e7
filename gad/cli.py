"""`gad` — the single entry point; every capability is a subcommand with `--help`.

    gad data synth --out data/synth             the synthetic benchmark
    gad train data/synth --out runs/gad         train (generative | discriminative | gad)
    gad eval runs/gad --data data/synth         per-frame mAP, accuracy, segment F1, plots
    gad info runs/gad/checkpoint                what a checkpoint holds
    gad bench forward --backbone tiny           parameter counts and one-forward latency
    gad bench compare --data data/synth         the three classifiers side by side

Each package contributes its subcommands through a torch-free `commands` module whose
handlers import the heavy libraries only when they run, so `gad --help` (and later
`gad serve`) never import torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from gad import __version__
from runtime.errors import GADError

# Modules exposing `register(commands, groups)`; order is the order in `--help`.
COMMAND_MODULES = (
    "gad.commands.training",
    "gad.commands.video",
    "gad.commands.demo",
    "gad.commands.model",
    "gad.commands.encoder",
    "gad.commands.export",
    "gad.commands.serve",
)
# Subcommand groups (`gad bench ...`) that several packages add to.
GROUPS = {
    "data": "make datasets in the standard OAD feature layout",
    "bench": "benchmarks that print a table (medians of several runs)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gad",
        description="GAD Stream: online action detection with a generation-assisted "
        "discriminative LLM classifier (Pang et al., ICLR 2026).",
    )
    parser.add_argument("--version", action="version", version=f"gad-stream {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    for name, help_text in GROUPS.items():
        group = commands.add_parser(name, help=help_text, description=help_text)
        groups[name] = group.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
        group.set_defaults(handler=_group_help(group))
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(commands, groups)
    return parser


def _group_help(group: argparse.ArgumentParser):
    def show(_: argparse.Namespace) -> int:
        group.print_help()
        return 2

    return show


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except GADError as exc:
        print(f"gad {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
