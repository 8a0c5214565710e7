"""`gad export`: a trained run → a model package (head.onnx, encoder.onnx, clip.onnx,
manifest.json) that `gad serve` loads.

    gad export runs/gad --out models --data data/synth
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from gad.subcommands import Subcommands


def register(commands: Subcommands) -> None:
    commands.add(
        "export",
        build,
        help="write a model package (head.onnx, encoder.onnx, manifest.json) for serving",
        description="Export a discriminative or gad checkpoint's one-pass [CLS] path to ONNX "
        "(features [batch, time, D] + mask [batch, time] → logits [batch, classes]; dynamic "
        "batch and time; LoRA merged), the frame encoder the data was extracted with, and a "
        "manifest with classes, fps, window lengths, preprocessing, training summary, "
        "metrics and a sha256 per file. Writes OUT/NAME/VERSION/.",
    )


def build(export: argparse.ArgumentParser) -> None:
    export.add_argument("checkpoint", type=Path, help="checkpoint or run folder (gad train)")
    export.add_argument("--out", type=Path, required=True, help="package root, e.g. models/")
    export.add_argument("--name", default=None, help="model name (default: the run folder name)")
    export.add_argument("--version", default="1", help="package version (default 1)")
    export.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compare onnxruntime with PyTorch logits; fail above --tolerance (default on)",
    )
    export.add_argument("--tolerance", type=float, default=None, help="max abs logit difference")
    export.add_argument(
        "--data", type=Path, default=None, help="dataset to verify on (its real windows)"
    )
    export.add_argument(
        "--metrics", type=Path, default=None, help="gad eval metrics.json to record"
    )
    export.add_argument("--backbone", default=None, help="local folder of the backbone, if moved")
    export.add_argument("--no-encoder", action="store_true", help="leave encoder.onnx out")
    export.add_argument(
        "--clip",
        type=Path,
        default=None,
        help="a clip model (gad train --task clip) to add as clip.onnx: /classify then also "
        "answers step, task and next step",
    )
    export.add_argument("--force", action="store_true", help="replace an existing package version")
    export.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    from training.export import export_run

    result = export_run(
        args.checkpoint,
        args.out,
        name=args.name,
        version=args.version,
        verify=args.verify,
        tolerance=args.tolerance,
        force=args.force,
        backbone=args.backbone,
        data=args.data,
        metrics=args.metrics,
        with_encoder=not args.no_encoder,
        clip=args.clip,
    )
    package, info = result.package, result.manifest
    print(f"package   {result.folder}")
    print(f"model     {package.name} v{package.version} ({package.kind})")
    if info.step is not None:
        ring = 4 * math.prod(package.ring_shape)  # float32 K/V, bytes per stream
        print(
            f"classes   {len(package.classes)}; fps {package.fps:g}; streaming attention, "
            f"window {info.step.window} frames (step.onnx; K/V rings {ring / 1024:,.0f} KiB "
            f"per stream; a label reads {info.step.reach} frames)"
        )
    elif not package.has_head:
        print(f"head      none: a clip-only package (fps {package.fps:g}; no streams)")
    else:
        window = package.window
        print(
            f"classes   {len(package.classes)}; fps {package.fps:g}; window "
            f"{window.long_frames} long (stride {window.long_stride}) + "
            f"{window.short_frames} short"
        )
    for name, digest in info.files.items():
        print(f"file      {name}  {digest.bytes / 1e6:.1f} MB  sha256 {digest.sha256[:12]}")
    if info.verify is not None:
        v = info.verify
        print(
            f"verified  max |ONNX - PyTorch| = {v.max_abs_diff:.2e} (tolerance "
            f"{v.tolerance:g}) on {v.probe_text}"
        )
    if info.clip is not None:
        clip = info.clip
        print(
            f"clip      {len(clip.steps)} steps, {len(clip.tasks)} tasks, clips of at "
            f"most {clip.max_frames} rows ({clip.kind})"
        )
        if clip.verify is not None:
            print(f"verified  clip.onnx max |ONNX - PyTorch| = {clip.verify.max_abs_diff:.2e}")
    if info.encoder is not None:
        print(f"encoder   {info.encoder.name}: {json.dumps(info.encoder.verify or {})}")
    return 0
