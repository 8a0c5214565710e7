"""`gad train`: a generative, discriminative or GAD classifier on a feature dataset.

    gad train data/synth --out runs/gad --kind gad --backbone tiny --epochs 8
    gad train data/procedures --task clip --out runs/clip

The training flags are shared with `gad bench compare` (add_train_arguments, train_config).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from gad.subcommands import Subcommands

if TYPE_CHECKING:
    from training.train import TrainConfig


def register(commands: Subcommands) -> None:
    commands.add(
        "train",
        build,
        help="train a generative, discriminative or GAD classifier on a feature dataset",
        description="Train on DATA (a folder with data_info.json; with --task clip, "
        "COIN-style annotations in DATA/coin.json or --annotations). Writes OUT/checkpoint "
        "(see `gad info`), OUT/log.jsonl (and OUT/tensorboard when tensorboard is installed). "
        "Ctrl-C saves a checkpoint; --resume continues it. Multi-GPU: "
        "`accelerate launch -m gad train ...` or `torchrun --nproc-per-node N -m gad train ...`.",
    )


def build(train: argparse.ArgumentParser) -> None:
    train.add_argument("data", type=Path, help="dataset folder holding data_info.json")
    train.add_argument("--out", type=Path, required=True, help="run folder")
    add_train_arguments(train)
    train.set_defaults(handler=run_train)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The training flags. The kinds and LoRA targets come from model.config, imported
    only when the verb is built (gad/subcommands.py)."""
    from model.config import CLASSIFIER_KINDS, LLAMA_LORA_TARGETS

    parser.add_argument(
        "--task",
        choices=["frame", "clip"],
        default="frame",
        help="frame: the online model (each frame's action from its window; default); "
        "clip: the offline model over COIN-style annotations — step, task and next-step "
        "recognition trained jointly, two heads on one [CLS]",
    )
    parser.add_argument(
        "--clip-frames",
        type=int,
        default=32,
        help="clip task: longer clips are uniformly subsampled to this many rows (default 32; "
        "the paper's COIN setup: 1200, 10 min at 2 fps)",
    )
    parser.add_argument(
        "--clip-tokens-per-frame",
        type=int,
        default=1,
        help="clip task: LLM tokens per row (default 1; the paper's COIN setup reads 10: "
        "an image [CLS] + 3x3 pooled patches)",
    )
    parser.add_argument(
        "--clip-frame-tokens",
        choices=["expand", "split"],
        default="expand",
        help="clip task, k > 1 tokens per row: expand (one feature -> k tokens, default) or "
        "split (the row is k token features concatenated, each through the connector)",
    )
    parser.add_argument(
        "--clip-separator",
        default=None,
        help='clip task: text between rows (default "," when k > 1, as the paper; "" for none)',
    )
    parser.add_argument(
        "--annotations",
        type=Path,
        default=None,
        help="clip task: COIN-style JSON (default DATA/coin.json)",
    )
    parser.add_argument(
        "--fps", type=float, default=None, help="clip task: feature fps (default: data_info.json)"
    )
    parser.add_argument(
        "--attention",
        choices=["window", "streaming"],
        default="window",
        help="window: every frame re-reads its window (--long + --short; default); "
        "streaming: each frame is read once, its [CLS] sees the question and the last "
        "--window frames through per-layer K/V rings — one step per frame when served "
        "(docs/streaming.md; --kind discriminative or gad)",
    )
    parser.add_argument(
        "--window", type=int, default=40, help="streaming: frames each frame sees (default 40)"
    )
    parser.add_argument(
        "--crop",
        type=int,
        default=256,
        help="streaming: frames per training sequence, every frame supervised (default 256)",
    )
    parser.add_argument("--dataset", default=None, help="name in data_info.json (if several)")
    parser.add_argument(
        "--feature-dirs",
        default=None,
        help="comma-separated feature folders, concatenated (e.g. "
        "rgb_kinetics_resnet50,flow_kinetics_bninception)",
    )
    parser.add_argument("--kind", choices=CLASSIFIER_KINDS, default="gad")
    parser.add_argument(
        "--backbone",
        default="tiny",
        help="tiny | tiny-llama3 | smollm2-135m | PATH to a HF Llama folder",
    )
    parser.add_argument("--long", type=int, default=128, help="long-memory frames (default 128)")
    parser.add_argument("--short", type=int, default=32, help="short-window frames (default 32)")
    parser.add_argument("--long-stride", type=int, default=1)
    parser.add_argument("--lm-weight", type=float, default=1.0, help="λ for the LM loss")
    parser.add_argument(
        "--background-weight",
        type=float,
        default=1.0,
        help="CE weight of background windows (THUMOS 1.0, EK100 0.5, CrossTask 0.2)",
    )
    parser.add_argument("--lora-rank", type=int, default=128, help="0 freezes the backbone")
    parser.add_argument("--lora-alpha", type=int, default=256)
    parser.add_argument("--lora-dropout", type=float, default=0.05)
    parser.add_argument("--lora-targets", default=",".join(LLAMA_LORA_TARGETS))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=None, help="stop after N steps")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--warmup", type=float, default=0.1, help="warm-up share of the steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU)")
    parser.add_argument("--save-every", type=int, default=0, help="checkpoint every N steps")
    parser.add_argument("--resume", action="store_true", help="continue OUT/checkpoint")
    parser.add_argument("--limit-videos", type=int, default=None, help="first N train videos")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def train_config(args: argparse.Namespace, out: Path) -> TrainConfig:
    from model.config import LoraSettings
    from training.train import TrainConfig

    return TrainConfig(
        data=args.data, out=out, dataset=args.dataset,
        feature_dirs=tuple(args.feature_dirs.split(",")) if args.feature_dirs else None,
        kind=args.kind, backbone=args.backbone, long_frames=args.long, short_frames=args.short,
        long_stride=args.long_stride, lm_weight=args.lm_weight,
        background_weight=args.background_weight,
        lora=LoraSettings(rank=args.lora_rank, alpha=args.lora_alpha, dropout=args.lora_dropout,
                          target_modules=tuple(args.lora_targets.split(","))),
        epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, warmup_ratio=args.warmup, seed=args.seed,
        device=args.device, bf16=args.bf16, save_every=args.save_every, resume=args.resume,
        limit_videos=args.limit_videos, progress=not args.no_progress, task=args.task,
        clip_frames=args.clip_frames, annotations=args.annotations, fps=args.fps,
        clip_tokens_per_frame=args.clip_tokens_per_frame,
        clip_frame_tokens=args.clip_frame_tokens, clip_separator=args.clip_separator,
        attention=args.attention, crop_frames=args.crop,
        stream_window=args.window if args.attention == "streaming" else 0,
    )  # fmt: skip


def run_train(args: argparse.Namespace) -> int:
    from training.train import train

    result = train(train_config(args, args.out))
    print(
        f"checkpoint {result.checkpoint}: {result.steps} steps in {result.seconds:.1f} s, "
        f"last loss {result.last_loss:.4f} ({result.windows} windows per epoch)"
    )
    return 0
