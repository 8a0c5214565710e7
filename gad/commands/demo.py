"""`gad demo build`: the demo models (gad/demo.py). `--kind render` (the default) is the
one `gad serve` uses with no --model; `--kind pose` is served by `gad serve --demo pose`."""

from __future__ import annotations

import argparse
from pathlib import Path

from gad.subcommands import Subcommands, add_group


def register(commands: Subcommands) -> None:
    commands.add(
        "demo",
        build,
        help="build a demo model (rendered actions or real motion capture → tiny GAD → package)",
        description="--kind render (default): render the stick-figure action benchmark, "
        "extract EfficientNet-Lite0 features, train a tiny GAD model, evaluate it and export "
        "the package `gad serve` uses by default (about 3-5 minutes on 2 CPU cores). "
        "--kind pose: write 2D body-pose rows from real motion capture (gad data mocap), "
        "train, evaluate and export a package with the BlazePose encoder inside, for real "
        "cameras (about 3 minutes; `gad serve --demo pose`). Cached: a second run with the "
        "same recipe does nothing.",
    )


def build(parser: argparse.ArgumentParser) -> None:
    demo = add_group(parser)
    demo.add("build", build_build, help="build (or confirm) a demo model")


def build_build(build: argparse.ArgumentParser) -> None:
    from gad.demo import DEFAULT_KIND, KINDS

    build.add_argument(
        "--kind",
        choices=KINDS,
        default=DEFAULT_KIND,
        help=f"which demo model (default {DEFAULT_KIND})",
    )
    build.add_argument(
        "--root",
        type=Path,
        default=None,
        help="where to build (default: CACHE/demo, or CACHE/demo-pose for --kind pose)",
    )
    build.add_argument("--force", action="store_true", help="train and export again")
    build.set_defaults(handler=run_build)


def run_build(args: argparse.Namespace) -> int:
    from gad.demo import build_demo, demo_root

    build_demo(args.root or demo_root(kind=args.kind), force=args.force, kind=args.kind)
    return 0
