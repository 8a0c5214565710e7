"""`gad eval`: score a checkpoint on a dataset's split and write its report
(training/evaluate.py: evaluate_run).

    gad eval runs/gad --data data/synth --save-scores runs/gad/scores.npz
    gad eval --from-scores runs/gad/scores.npz --data data/synth
    gad eval runs/clip --data data/procedures
    gad eval runs/generative --data data/synth --constrained-decoding
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gad.subcommands import Subcommands


def register(commands: Subcommands) -> None:
    commands.add(
        "eval",
        build,
        help="score every frame of the test videos (mAP, mcAP, accuracy, segment F1, plots); "
        "clip models: top-1 / top-5 for step, task and next step",
        description="Evaluate a checkpoint (or a run folder holding checkpoint/) on DATA's "
        "test split at stride 1. Writes metrics.json, metrics.md, a confusion matrix and "
        "per-video timelines to --report (default: RUN/eval). --from-scores recomputes the "
        "report from a saved scores file without the model.",
    )


def build(evaluate: argparse.ArgumentParser) -> None:
    evaluate.add_argument("checkpoint", type=Path, nargs="?", help="checkpoint or run folder")
    evaluate.add_argument("--data", type=Path, required=True)
    evaluate.add_argument("--dataset", default=None, help="name in data_info.json")
    evaluate.add_argument(
        "--split",
        choices=["train", "test", "val"],
        default="test",
        help="val: data_info.json's val_session_set (Ego4D-GoalStep has one)",
    )
    evaluate.add_argument("--batch-size", type=int, default=64)
    evaluate.add_argument("--device", default="auto", help="auto | cpu | cuda")
    evaluate.add_argument("--limit-videos", type=int, default=None)
    evaluate.add_argument("--save-scores", type=Path, default=None, help="write scores .npz here")
    evaluate.add_argument(
        "--from-scores", type=Path, default=None, help="report from a scores .npz"
    )
    evaluate.add_argument("--report", type=Path, default=None, help="report folder")
    evaluate.add_argument("--plots", type=int, default=4, help="timelines for the first N videos")
    evaluate.add_argument(
        "--annotations", type=Path, default=None, help="clip models: default DATA/coin.json"
    )
    evaluate.add_argument("--fps", type=float, default=None, help="clip models: feature fps")
    decoding = evaluate.add_mutually_exclusive_group()
    decoding.add_argument(
        "--constrained-decoding",
        action="store_true",
        help="generative: greedy decoding constrained to the labels (a label trie), "
        "stronger than the paper's baseline; the report says which decoding ran",
    )
    decoding.add_argument(
        "--free-decoding",
        action="store_true",
        help="generative: free greedy decoding mapped to the nearest label by edit "
        "distance, the paper's generative baseline (the default)",
    )
    evaluate.set_defaults(handler=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from training.eval_run import EvalConfig, evaluate_run

    result = evaluate_run(
        EvalConfig(
            checkpoint=args.checkpoint,
            data=args.data,
            dataset=args.dataset,
            split=args.split,
            batch_size=args.batch_size,
            device=args.device,
            limit_videos=args.limit_videos,
            save_scores=args.save_scores,
            from_scores=args.from_scores,
            report=args.report,
            plots=args.plots,
            annotations=args.annotations,
            fps=args.fps,
            constrained=args.constrained_decoding,
        )
    )
    print(result.markdown)
    print(f"\nreport: {result.report}" + (f"; scores: {result.scores}" if result.scores else ""))
    return 0
