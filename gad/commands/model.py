"""`gad info` and `gad bench forward`. Torch is imported only inside the handlers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gad.output import emit_table
from model.config import CLASSIFIER_KINDS


def register(
    commands: argparse._SubParsersAction, groups: dict[str, argparse._SubParsersAction]
) -> None:
    info = commands.add_parser(
        "info",
        help="show what a checkpoint holds",
        description="Print a checkpoint's kind, backbone (and fingerprint), feature size, "
        "classes, LoRA settings, parameter counts and files. Reads only checkpoint.json: "
        "no torch, no weights loaded.",
    )
    info.add_argument("checkpoint", type=Path, help="checkpoint folder (written by gad train)")
    info.add_argument("--json", action="store_true", help="print checkpoint.json as JSON")
    info.set_defaults(handler=run_info)

    bench = groups["bench"].add_parser(
        "forward",
        help="parameter counts and one-forward latency per backbone",
        description="Build a GAD classifier on each backbone with the paper's LoRA settings "
        "(r=128, α=256) and time class_logits on one window (long + short frames): "
        "median of --repeats runs after one warm-up. Prints a Markdown table.",
    )
    bench.add_argument(
        "--backbone",
        action="append",
        help="tiny | smollm2-135m | PATH (repeatable; default: tiny and smollm2-135m)",
    )
    bench.add_argument("--kind", choices=CLASSIFIER_KINDS, default="gad")
    bench.add_argument("--long", type=int, default=128, help="long-memory frames (default 128)")
    bench.add_argument("--short", type=int, default=32, help="short-window frames (default 32)")
    bench.add_argument("--feature-dim", type=int, default=2048, help="feature size (THUMOS: 2048)")
    bench.add_argument("--classes", type=int, default=22, help="class count (THUMOS: 22)")
    bench.add_argument("--batch", type=int, default=1, help="windows per forward (default 1)")
    bench.add_argument("--repeats", type=int, default=5, help="timed runs (default 5)")
    bench.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    bench.add_argument("--out", type=Path, default=None, help="also write the table here")
    bench.set_defaults(handler=run_bench_forward)


def run_info(args: argparse.Namespace) -> int:
    from model.checkpoint_info import describe_checkpoint, read_checkpoint_info

    info = read_checkpoint_info(args.checkpoint)
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
        return 0
    rows = describe_checkpoint(info)
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


def run_bench_forward(args: argparse.Namespace) -> int:
    from bench.forward import ForwardBench, render_table, run_forward_bench

    bench = ForwardBench(
        kind=args.kind,
        long_frames=args.long,
        short_frames=args.short,
        feature_dim=args.feature_dim,
        num_classes=args.classes,
        batch=args.batch,
        repeats=args.repeats,
        threads=args.threads,
    )
    rows = [run_forward_bench(spec, bench) for spec in args.backbone or ["tiny", "smollm2-135m"]]
    table = render_table(rows, bench)
    return emit_table(table, args.out)
