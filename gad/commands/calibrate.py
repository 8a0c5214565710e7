"""`gad calibrate`: fit a model package's temperature on held-out frames and record it in
its manifest, so that every probability it serves is calibrated (docs/pose.md).

    gad calibrate models/demo-pose --data data/mocap-val --split test
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gad.subcommands import Subcommands


def register(commands: Subcommands) -> None:
    commands.add(
        "calibrate",
        build,
        help="fit a package's temperature on held-out frames (its manifest's calibration)",
        description="Score a feature dataset's split with the package's own graphs (head.onnx "
        "over each frame's window, or step.onnx), fit the temperature T that minimises the "
        "negative log-likelihood of the frames' labels (the ignored class left out), and "
        "write it into the package's manifest.json: every probability the package serves is "
        "then softmax(logits / T), windows and streams alike. Prints NLL, ECE and how often "
        "a confident (> 80%%) label is wrong, before and after. Fit on frames the model "
        "never trained on (not its training split).",
    )


def build(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("package", type=Path, help="model package (a version folder or its parent)")
    parser.add_argument("--data", type=Path, required=True, help="feature dataset (data_info.json)")
    parser.add_argument(
        "--split", default="val", choices=("train", "test", "val"), help="default val"
    )
    parser.add_argument("--dataset", default=None, help="dataset name in data_info.json")
    parser.add_argument("--videos", type=int, default=None, help="only the split's first N videos")
    parser.add_argument(
        "--min-temperature",
        type=float,
        default=None,
        help="floor for T (1: never sharpen the probabilities, only soften them)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the fit, leave the manifest as it is"
    )
    parser.set_defaults(handler=run_calibrate)


def run_calibrate(args: argparse.Namespace) -> int:
    from training.calibration import calibrate_package

    package, fit, record = calibrate_package(
        args.package,
        args.data,
        args.split,
        dataset=args.dataset,
        limit=args.videos,
        min_temperature=args.min_temperature,
        write=not args.dry_run,
    )
    print(f"package      {package.folder} ({package.name} v{package.version})")
    print(f"fitted on    {record.fitted_on}: {fit.frames:,} labelled frames")
    floor = "" if fit.min_temperature is None else f", floor {fit.min_temperature:g}"
    print(f"temperature  {fit.temperature:.3f} (NLL optimum {fit.optimum:.3f}{floor})")
    print("                      before   after")
    for name, before, after in (
        ("NLL", fit.before.nll, fit.after.nll),
        ("ECE", fit.before.ece, fit.after.ece),
        ("confident > 80%", fit.before.confidence.confident, fit.after.confidence.confident),
        (
            "confident & wrong",
            fit.before.confidence.confident_wrong,
            fit.after.confidence.confident_wrong,
        ),
    ):
        print(f"{name:<20} {before:8.4f} {after:7.4f}")
    print("manifest     " + ("unchanged (--dry-run)" if args.dry_run else "calibration written"))
    return 0
