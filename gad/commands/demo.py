"""`gad demo build`: the demo models (gad/demo.py). `--kind pose` (the default) is the one
`gad serve` and `make run` use with no --model; `--kind render` is served by
`gad serve --demo render` and streamed by the service benchmarks."""

from __future__ import annotations

import argparse
from pathlib import Path

from gad.subcommands import Subcommands, add_group


def register(commands: Subcommands) -> None:
    commands.add(
        "demo",
        build,
        help="build a demo model (real motion capture or rendered actions → tiny GAD → package)",
        description="--kind pose (default): write 2D body-pose rows from real motion "
        "capture (gad data mocap), train a tiny GAD model, evaluate it and export a package "
        "with the BlazePose encoder inside, for real cameras: the package `gad serve` uses "
        "by default (about 3 minutes on 2 CPU cores). --kind render: render the "
        "stick-figure action benchmark, extract EfficientNet-Lite0 features, train, evaluate "
        "and export the package the service benchmarks stream (about 2 minutes; "
        "`gad serve --demo render`). Cached: a second run with the same recipe does nothing.",
    )


def build(parser: argparse.ArgumentParser) -> None:
    demo = add_group(parser)
    demo.add("build", build_build, help="build (or confirm) a demo model")


def build_build(build: argparse.ArgumentParser) -> None:
    from gad.demo import KINDS, SERVED_KIND

    build.add_argument(
        "--kind",
        choices=KINDS,
        default=SERVED_KIND,
        help=f"which demo model (default {SERVED_KIND}, the one `gad serve` serves)",
    )
    build.add_argument(
        "--root",
        type=Path,
        default=None,
        help="where to build (default: CACHE/demo-pose, or CACHE/demo for --kind render)",
    )
    build.add_argument("--force", action="store_true", help="train and export again")
    build.set_defaults(handler=run_build)


def run_build(args: argparse.Namespace) -> int:
    from gad.demo import build_demo, demo_root

    build_demo(args.root or demo_root(kind=args.kind), force=args.force, kind=args.kind)
    return 0
