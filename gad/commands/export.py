"""`gad export` and `gad bench engine`. Torch is imported only inside the handlers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gad.output import emit_table


def register(
    commands: argparse._SubParsersAction, groups: dict[str, argparse._SubParsersAction]
) -> None:
    export = commands.add_parser(
        "export",
        help="write a model package (head.onnx, encoder.onnx, manifest.json) for serving",
        description="Export a discriminative or gad checkpoint's one-pass [CLS] path to ONNX "
        "(features [batch, time, D] + mask [batch, time] → logits [batch, classes]; dynamic "
        "batch and time; LoRA merged), the frame encoder the data was extracted with, and a "
        "manifest with classes, fps, window lengths, preprocessing, training summary, "
        "metrics and a sha256 per file. Writes OUT/NAME/VERSION/.",
    )
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

    bench = groups["bench"].add_parser(
        "engine",
        help="per-frame latency (generative vs one-pass head) and engine throughput",
        description="Per frame, same backbone and window: greedy generative decoding with a "
        "KV cache vs the one-pass [CLS] head in PyTorch vs head.onnx in onnxruntime; then "
        "windows/s of the naive loop (PyTorch, batch 1) vs the engine at batch 1/4/16/64. "
        "Random weights (latency does not depend on them). Prints Markdown tables.",
    )
    bench.add_argument(
        "--backbone",
        action="append",
        help="tiny | smollm2-135m | llama3.2-1b-random | PATH "
        "(repeatable; default: tiny and smollm2-135m)",
    )
    bench.add_argument("--long", type=int, default=128, help="long-memory frames (default 128)")
    bench.add_argument("--short", type=int, default=32, help="short-window frames (default 32)")
    bench.add_argument("--feature-dim", type=int, default=2048, help="feature size (default 2048)")
    bench.add_argument("--repeats", type=int, default=5, help="timed runs per figure (default 5)")
    bench.add_argument("--threads", type=int, default=None, help="CPU threads (torch and ORT)")
    bench.add_argument(
        "--batch", type=int, action="append", help="engine batch sizes (default 1 4 16 64)"
    )
    bench.add_argument(
        "--latency-batch", type=int, action="append", help="per-frame latency batches (default 1)"
    )
    bench.add_argument("--device", default="cpu", help="torch device: cpu | cuda (default cpu)")
    bench.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    bench.add_argument("--no-onnx", action="store_true", help="skip the onnxruntime rows")
    bench.add_argument(
        "--merged",
        action="store_true",
        help="also time the head with LoRA merged in PyTorch (the torch backend's path)",
    )
    bench.add_argument("--out", type=Path, default=None, help="also write the tables here")
    bench.set_defaults(handler=run_bench_engine)
    register_clip_bench(groups)


def register_clip_bench(groups: dict[str, argparse._SubParsersAction]) -> None:
    bench = groups["bench"].add_parser(
        "clip",
        help="per-clip latency: the clip model's one-pass heads vs generative decoding",
        description="Same backbone, clip length and device: one answer (the step question) "
        "and a whole clip (step, task, next step) by the [CLS] heads in one pass vs by "
        "constrained greedy decoding. Random weights. Prints a Markdown table.",
    )
    bench.add_argument(
        "--backbone", action="append", help="tiny | smollm2-135m | llama3.2-1b-random | PATH"
    )
    bench.add_argument("--clip-frames", type=int, default=32, help="rows per clip (default 32)")
    bench.add_argument("--feature-dim", type=int, default=2048)
    bench.add_argument("--repeats", type=int, default=10)
    bench.add_argument("--device", default="cpu", help="cpu | cuda")
    bench.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    bench.add_argument("--out", type=Path, default=None, help="also write the table here")
    bench.set_defaults(handler=run_bench_clip)


def run_bench_clip(args: argparse.Namespace) -> int:
    from bench.clip import ClipBench, render_clip_bench, run_clip_bench

    bench = ClipBench(
        clip_frames=args.clip_frames,
        feature_dim=args.feature_dim,
        repeats=args.repeats,
        device=args.device,
        dtype=args.dtype,
    )
    rows = []
    for spec in args.backbone or ["tiny", "smollm2-135m"]:
        rows += run_clip_bench(spec, bench)
        print(f"done: {spec}", flush=True)
    return emit_table(render_clip_bench(rows, bench), args.out)


def run_export(args: argparse.Namespace) -> int:
    from model.checkpoint_info import resolve_checkpoint
    from model.export.graph import DEFAULT_TOLERANCE
    from training.export import export_run

    ckpt = resolve_checkpoint(args.checkpoint)
    result = export_run(
        ckpt,
        args.out,
        name=args.name,
        version=args.version,
        verify=args.verify,
        tolerance=args.tolerance if args.tolerance is not None else DEFAULT_TOLERANCE,
        force=args.force,
        backbone=args.backbone,
        data=args.data,
        metrics=args.metrics,
        with_encoder=not args.no_encoder,
        clip=None if args.clip is None else resolve_checkpoint(args.clip),
    )
    manifest = result.manifest
    print(f"package   {result.folder}")
    print(f"model     {manifest['name']} v{manifest['version']} ({manifest['kind']})")
    window = manifest["window"]
    if window is None:
        print(f"head      none: a clip-only package (fps {manifest['fps']:g}; no streams)")
    else:
        print(
            f"classes   {len(manifest['classes'])}; fps {manifest['fps']:g}; window "
            f"{window['long_frames']} long (stride {window['long_stride']}) + "
            f"{window['short_frames']} short"
        )
    for name, digest in manifest["files"].items():
        print(f"file      {name}  {digest['bytes'] / 1e6:.1f} MB  sha256 {digest['sha256'][:12]}")
    if manifest["verify"]:
        v = manifest["verify"]
        print(
            f"verified  max |ONNX - PyTorch| = {v['max_abs_diff']:.2e} (tolerance "
            f"{v['tolerance']:g}) on {v['windows']} windows"
        )
    clip = manifest.get("clip")
    if clip:
        print(
            f"clip      {len(clip['steps'])} steps, {len(clip['tasks'])} tasks, clips of at "
            f"most {clip['max_frames']} rows ({clip['kind']})"
        )
        if clip["verify"]:
            diff = clip["verify"]["max_abs_diff"]
            print(f"verified  clip.onnx max |ONNX - PyTorch| = {diff:.2e}")
    if manifest.get("encoder"):
        ev = manifest["encoder"].get("verify") or {}
        print(f"encoder   {manifest['encoder']['name']}: {json.dumps(ev)}")
    return 0


def run_bench_engine(args: argparse.Namespace) -> int:
    from bench.engine import EngineBench, render_engine_tables, run_engine_bench

    bench = EngineBench(
        long_frames=args.long,
        short_frames=args.short,
        feature_dim=args.feature_dim,
        repeats=args.repeats,
        threads=args.threads,
        latency_batches=tuple(args.latency_batch or [1]),
        engine_batches=tuple(args.batch or [1, 4, 16, 64]),
        device=args.device,
        dtype=args.dtype,
        onnx=not args.no_onnx,
        merged=args.merged,
    )
    rows = []
    for spec in args.backbone or ["tiny", "smollm2-135m"]:
        rows += run_engine_bench(spec, bench)
        print(f"done: {spec}", flush=True)
    table = render_engine_tables(rows, bench)
    return emit_table(table, args.out)
