"""`gad demo build`: the default demo model that `gad serve` uses (gad/demo.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gad.subcommands import Subcommands, add_group


def register(commands: Subcommands) -> None:
    commands.add(
        "demo",
        build,
        help="build the default demo model (rendered actions → features → tiny GAD → package)",
        description="Render the stick-figure action benchmark, extract EfficientNet-Lite0 "
        "features, train a tiny GAD model, evaluate it and export the package `gad serve` "
        "uses by default. Cached: a second run with the same recipe does nothing. "
        "About 3-5 minutes on 2 CPU cores.",
    )


def build(parser: argparse.ArgumentParser) -> None:
    demo = add_group(parser)
    demo.add("build", build_build, help="build (or confirm) the demo model")


def build_build(build: argparse.ArgumentParser) -> None:
    build.add_argument(
        "--root", type=Path, default=None, help="where to build (default: CACHE/demo)"
    )
    build.add_argument("--force", action="store_true", help="train and export again")
    build.set_defaults(handler=run_build)


def run_build(args: argparse.Namespace) -> int:
    from gad.demo import build_demo, demo_root

    build_demo(args.root or demo_root(), force=args.force)
    return 0
