"""`gad teach train`: a new version of a served model from the user's examples (issue 27,
docs/teach.md): the base's classes plus the examples' new labels, the built-in motion
capture kept in the mix, fine-tuned from the base's weights, verified, written as
OUT/N+1/.

    gad teach train --examples DATA/open/demo-pose --base models/demo-pose --out models/demo-pose
    gad teach train ... --json        # progress and result as JSON lines (the service's job)

The torch-free service never imports this: where the training install is present it starts
`python -m gad teach train ... --json` as a subprocess and reads its stdout, one JSON
object a line:

    {"stage": "prepare" | "train" | "export" | "evaluate" | "done", "progress": 0.0-1.0, ...}
    {"result": {...}}                 last line, exit 0 (TeachResult.to_json)
    {"error": "...", "stage": "..."}  last line, exit 2 (a GADError) or 1 (anything else)
    {"error": "cancelled", ...}       last line, exit 130, after SIGTERM (or Ctrl-C)

Nothing of a failed or cancelled job stays behind: the version is written in a work folder
beside OUT (`.NAME-teach-N.tmp`) and renamed to OUT/N+1 only once checked.

`train` lines add step, steps, loss and elapsed_s; every line may carry a message.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from gad.subcommands import Subcommands, add_group, group_of

HELP = "teach a model your actions: train a new version from a few examples"


def register(commands: Subcommands) -> None:
    """`train` in the `gad teach` group (gad/commands/teach.py: add, list, remove; this
    module is registered after it), or a `teach` group of its own when there is none."""
    if not commands.extend("teach", lambda parser: add_train(group_of(parser))):
        commands.add("teach", lambda parser: add_train(add_group(parser)), help=HELP)


def add_train(group: Subcommands) -> None:
    group.add(
        "train",
        build,
        help="train a new package version from the examples (OUT/N+1)",
        description="Fine-tune the base package's model on the examples (a folder in the "
        "standard feature layout, as the service's examples store keeps them) with the "
        "built-in motion-capture data in the mix, so the old classes hold; the new labels "
        "become new classes. Examples are split by example into train and held out. Writes "
        "OUT/N+1/ through gad export's path (verified), with the held-out accuracy of the "
        "examples and the old classes' mAP before and after in its manifest (docs/teach.md).",
    )


def build(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--examples", type=Path, required=True, help="the examples' folder")
    parser.add_argument(
        "--base", type=Path, required=True, help="base package (a version folder or its parent)"
    )
    parser.add_argument("--out", type=Path, required=True, help="model folder: writes OUT/N+1")
    parser.add_argument(
        "--mocap",
        type=Path,
        default=None,
        help="built-in data to keep in the mix (default: the base's training data, from its "
        "manifest; the pose demo's is rebuilt when missing)",
    )
    parser.add_argument(
        "--base-checkpoint",
        type=Path,
        default=None,
        help="the base's PyTorch checkpoint when it keeps none of its own (BASE/checkpoint, "
        "a taught version's, always wins; default: the run beside its package root)",
    )
    parser.add_argument("--steps", type=int, default=600, help="fine-tuning batches (default 600)")
    parser.add_argument(
        "--seconds",
        type=float,
        default=90.0,
        help="training time cap, whichever of it and --steps comes first (default 90)",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--examples-share", type=float, default=0.25, help="share of a batch that is examples"
    )
    parser.add_argument("--eval-videos", type=int, default=None, help="held-out mocap videos")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-augment", action="store_true", help="examples as recorded")
    parser.add_argument("--json", action="store_true", help="JSON lines on stdout (module doc)")
    parser.set_defaults(handler=run_teach_train)


def run_teach_train(args: argparse.Namespace) -> int:
    emit = _json_line if args.json else _text_line
    stage = {"now": "prepare"}
    # The service cancels a job with SIGTERM: clean up (teach's `finally`), then exit.
    previous = signal.signal(signal.SIGTERM, _cancel)
    try:
        return _run(args, emit, stage)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace, emit: Any, stage: dict[str, str]) -> int:
    def progress(name: str, fraction: float, info: dict[str, Any]) -> None:
        stage["now"] = name
        emit({"stage": name, "progress": round(fraction, 3), **info})

    try:
        from training.teach import TeachBudget, teach

        budget = TeachBudget(
            steps=args.steps, seconds=args.seconds, batch_size=args.batch_size, lr=args.lr,
            examples_share=args.examples_share, seed=args.seed, eval_videos=args.eval_videos,
            augment=not args.no_augment,
        )  # fmt: skip
        mocap = args.mocap if args.mocap is not None else demo_mocap(args.base, progress)
        result = teach(
            args.examples, args.base, args.out, budget=budget, mocap=mocap,
            base_checkpoint_dir=args.base_checkpoint, progress=progress,
        )  # fmt: skip
    except KeyboardInterrupt:
        if not args.json:
            raise
        _json_line({"error": "cancelled", "stage": stage["now"], "type": "Cancelled"})
        return 130
    except Exception as exc:
        if not args.json:
            raise
        from runtime.errors import GADError

        _json_line({"error": str(exc), "stage": stage["now"], "type": type(exc).__name__})
        return 2 if isinstance(exc, GADError) else 1
    if args.json:
        _json_line({"result": result.to_json()})
        return 0
    print(f"package   {result.folder} ({result.name} v{result.version}, from {result.base})")
    print(f"classes   {len(result.classes)}: new {', '.join(result.new_classes) or 'none'}")
    ex = result.examples
    print(f"examples  {ex['used']} ({len(ex['train'])} train, {len(ex['held_out'])} held out)")
    for label, acc in result.held_out_accuracy.items():
        shown = "not measured (no held-out example)" if acc is None else f"{100 * acc:.1f} %"
        print(f"held out  {label}: {shown} of frames")
    m = result.old_map
    print(f"old mAP   {100 * m['before']:.1f} -> {100 * m['after']:.1f} (held-out mocap)")
    print(f"time      {result.seconds} s, {result.steps} steps")
    for note in result.notes:
        print(f"note      {note}")
    return 0


def demo_mocap(base: Path, progress: Any) -> Path | None:
    """The pose demo's mocap data when `base` was trained on it (the demo's package, or a
    version taught from it: its manifest's training data), rebuilt by the demo's own recipe
    when gone; None for another base (its manifest decides)."""
    from gad.demo import MOCAP, demo_root, recipe
    from runtime.manifest import read_package

    root = demo_root(kind="pose")
    data = root / "mocap"
    named = (read_package(base, check_hashes=False).info.training or {}).get("data")
    ours = Path(base).resolve().is_relative_to(root.resolve() / "models" / recipe("pose").name)
    if not ours and not (named and Path(named).resolve() == data.resolve()):
        return None
    if not (data / "data_info.json").is_file():
        from gad.cli import main

        progress("prepare", 0.0, {"message": f"rebuilding the built-in data: {data}"})
        if main(["data", "mocap", "--out", str(data), *MOCAP, "--no-progress"]):
            raise SystemExit(f"gad data mocap failed for {data}")
    return data


def _cancel(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _json_line(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, default=str) + "\n")
    sys.stdout.flush()


def _text_line(record: dict[str, Any]) -> None:
    if record.get("stage") == "train" and record.get("step", 0) % 50:
        return
    parts = [f"{k} {v}" for k, v in record.items() if k not in ("stage", "progress")]
    stamp = time.strftime("%H:%M:%S")
    print(f"{stamp} {record.get('stage')} {100 * record.get('progress', 0):.0f}%  "
          + "  ".join(parts), flush=True)  # fmt: skip
