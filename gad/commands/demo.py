"""`gad demo build`: the default demo model that `gad serve` uses. Torch only when it runs."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(
    commands: argparse._SubParsersAction, groups: dict[str, argparse._SubParsersAction]
) -> None:
    demo = commands.add_parser(
        "demo",
        help="build the default demo model (rendered actions → features → tiny GAD → package)",
        description="Render the stick-figure action benchmark, extract EfficientNet-Lite0 "
        "features, train a tiny GAD model, evaluate it and export the package `gad serve` "
        "uses by default. Cached: a second run with the same recipe does nothing. "
        "About 3-5 minutes on 2 CPU cores.",
    )
    sub = demo.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    build = sub.add_parser("build", help="build (or confirm) the demo model")
    build.add_argument(
        "--root", type=Path, default=None, help="where to build (default: CACHE/demo)"
    )
    build.add_argument("--force", action="store_true", help="train and export again")
    build.set_defaults(handler=run_build)
    demo.set_defaults(handler=lambda _: demo.print_help() or 2)


def run_build(args: argparse.Namespace) -> int:
    from gad.demo import build_demo, demo_root

    build_demo(args.root or demo_root(), force=args.force)
    return 0
