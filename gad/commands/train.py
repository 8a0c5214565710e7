"""`gad train`: a generative, discriminative or GAD classifier on a feature dataset.

    gad train data/synth --out runs/gad --kind gad --backbone tiny --epochs 8
    gad train data/procedures --task clip --out runs/clip
    gad train data/EK100 --out runs/ek100 --preset ek100 --backbone PATH/Llama-3.2-1B-Instruct

The training flags are shared with `gad bench compare` (add_train_arguments, train_config).
A flag left out takes the preset's value (training/presets.py), else its default.
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
    from model.config import CLASSIFIER_KINDS, LLAMA_LORA_TARGETS, TARGET_STYLES
    from model.label_text import LABEL_TEXT_STYLES
    from training.presets import PRESETS

    parser.add_argument(
        "--preset",
        choices=list(PRESETS),
        default=None,
        help="the paper's run on one of the authors' datasets: their data_info.json entry, "
        "feature folder, fps, window, previous-action rule, background weight and schedule "
        "(epochs, batch, warm-up, LoRA); needs --backbone (their Llama-3.2-1B-Instruct "
        "folder, or tiny for a trial). Any flag given wins over it (docs/design.md)",
    )
    parser.add_argument(
        "--task",
        choices=["frame", "clip"],
        default=None,
        help="frame: the online model (each frame's action from its window; default); "
        "clip: the offline model over COIN-style annotations — step, task and next-step "
        "recognition trained jointly, two heads on one [CLS]",
    )
    parser.add_argument(
        "--clip-frames",
        type=int,
        default=None,
        help="clip task: longer clips are uniformly subsampled to this many rows (default 32; "
        "the paper's COIN setup: 1200, 10 min at 2 fps)",
    )
    parser.add_argument(
        "--clip-tokens-per-frame",
        type=int,
        default=None,
        help="clip task: LLM tokens per row (default 1; the paper's COIN setup reads 10: "
        "an image [CLS] + 3x3 pooled patches)",
    )
    parser.add_argument(
        "--clip-frame-tokens",
        choices=["expand", "split"],
        default=None,
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
        "--fps",
        type=float,
        default=None,
        help="feature fps: the clip task's (default: data_info.json); with a preset, the "
        "fps its data must have",
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
        default=None,
        help="tiny (default) | tiny-llama3 | smollm2-135m | PATH to a HF Llama folder",
    )
    parser.add_argument("--long", type=int, default=None, help="long-memory frames (default 128)")
    parser.add_argument("--short", type=int, default=None, help="short-window frames (default 32)")
    parser.add_argument("--long-stride", type=int, default=None, help="default 1")
    parser.add_argument(
        "--lm-weight", type=float, default=None, help="λ for the LM loss (default 1.0)"
    )
    parser.add_argument(
        "--background-weight",
        type=float,
        default=None,
        help="CE weight of background windows (default 1.0; the authors: THUMOS 1.0, "
        "EK100 0.5, Ego4D-GoalStep 0.5, CrossTask 0.2)",
    )
    parser.add_argument(
        "--targets",
        choices=TARGET_STYLES,
        default="authors",
        help="the prompt and LM-target layout: authors (default: their code's — a newline "
        "between question and frames, the LM loss also on '\\nAssistant:' and the clip "
        "model's row separators, ' background' without <eos>, the previous action's repeats "
        "dropped keeping the first, their label text) or ours (the layout before: none of "
        "these, the most recent previous action, our label text)",
    )
    parser.add_argument(
        "--previous-action",
        choices=["first", "last", "none"],
        default=None,
        help="GAD's previous action in the LM target: first (the authors' rule: "
        "[A, B, A, current] gives B), last (the most recent other action: A — what their "
        "comment reads like it means) or none; default: data_info.json's previous_action "
        "switch, by the --targets rule",
    )
    parser.add_argument(
        "--background-eos",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="end the background answer with <eos> like every other (ours: label "
        "log-likelihoods then compare answers of one form); default: --targets' (authors: "
        "no <eos>, their silence turn)",
    )
    parser.add_argument(
        "--label-text",
        choices=LABEL_TEXT_STYLES,
        default=None,
        help="class names in the LM text (model/label_text.py): authors (their code's; "
        "the default with --targets authors), authors-acronyms (theirs with COIN's TV, CD, "
        "SIM, ... kept upper case, which str.capitalize() undoes in theirs), normalised "
        "(ours; the default with --targets ours) or raw",
    )
    parser.add_argument("--lora-rank", type=int, default=None, help="0 freezes the backbone")
    parser.add_argument("--lora-alpha", type=int, default=None, help="default 256")
    parser.add_argument("--lora-dropout", type=float, default=None, help="default 0.05")
    parser.add_argument("--lora-targets", default=",".join(LLAMA_LORA_TARGETS))
    parser.add_argument("--epochs", type=int, default=None, help="default 1")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after N steps")
    parser.add_argument("--batch-size", type=int, default=None, help="default 8")
    parser.add_argument("--lr", type=float, default=None, help="default 1e-4")
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument(
        "--warmup", type=float, default=None, help="warm-up share of the steps (default 0.1)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="bf16 autocast (a GPU, or a CPU with AVX-512 BF16 / AMX: ~1.4x on this project's)",
    )
    parser.add_argument("--save-every", type=int, default=0, help="checkpoint every N steps")
    parser.add_argument(
        "--val-data",
        type=Path,
        default=None,
        help="held-out videos with the same classes (a dataset folder: its val split, else "
        "its test split; for --task clip, coin.json's validation subset, else testing) for a "
        "validation loss every --val-every steps (OUT/val_log.jsonl)",
    )
    parser.add_argument("--val-every", type=int, default=0, help="steps between validations")
    parser.add_argument(
        "--val-windows", type=int, default=512, help="validation windows (clips for --task clip)"
    )
    parser.add_argument(
        "--val-split",
        choices=["train", "test", "val"],
        default=None,
        help="the --val-data split to validate on (default: val if it has one, else test)",
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=0,
        help="stop once the validation loss has not improved (by 0.5%%) for N validations; "
        "the checkpoint is then the best-validated one (default 0: train the whole budget)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue OUT/checkpoint (or OUT/last, if further)"
    )
    parser.add_argument("--limit-videos", type=int, default=None, help="first N train videos")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


# A flag left out takes the preset's value, else this default (TrainConfig field: default).
DEFAULTS: dict[str, object] = {
    "task": "frame", "clip_frames": 32, "clip_tokens_per_frame": 1,
    "clip_frame_tokens": "expand", "clip_separator": None, "fps": None, "dataset": None,
    "feature_dirs": None, "long_frames": 128, "short_frames": 32, "long_stride": 1,
    "lm_weight": 1.0, "background_weight": 1.0, "previous_action": None, "epochs": 1,
    "batch_size": 8, "lr": 1e-4, "warmup_ratio": 0.1,
}  # fmt: skip
# TrainConfig field → the argparse name of its flag.
FLAGS = {
    "long_frames": "long", "short_frames": "short", "warmup_ratio": "warmup",
}  # fmt: skip


def train_config(args: argparse.Namespace, out: Path) -> TrainConfig:
    from model.config import LoraSettings
    from runtime.errors import ConfigError
    from training.presets import preset
    from training.train import TrainConfig

    chosen = preset(args.preset) if args.preset else None
    preset_values = chosen.train_values() if chosen else {}
    values = {}
    for field, default in DEFAULTS.items():
        given = getattr(args, FLAGS.get(field, field))
        if field == "feature_dirs" and given is not None:
            given = tuple(given.split(","))
        values[field] = given if given is not None else preset_values.get(field, default)
    backbone = args.backbone
    if backbone is None:
        if chosen is not None:
            raise ConfigError(
                f"--preset {chosen.name} trains the authors' {chosen.backbone}: pass "
                "--backbone PATH (its Hugging Face folder), or --backbone tiny for a trial run"
            )
        backbone = "tiny"

    def lora(flag: str, default: float) -> float:
        given = getattr(args, flag)
        return given if given is not None else getattr(chosen, flag, default)

    return TrainConfig(
        data=args.data, out=out, kind=args.kind, backbone=backbone,
        lora=LoraSettings(rank=int(lora("lora_rank", 128)), alpha=int(lora("lora_alpha", 256)),
                          dropout=lora("lora_dropout", 0.05),
                          target_modules=tuple(args.lora_targets.split(","))),
        max_steps=args.max_steps, weight_decay=args.weight_decay, seed=args.seed,
        device=args.device, bf16=args.bf16, save_every=args.save_every, resume=args.resume,
        limit_videos=args.limit_videos, progress=not args.no_progress,
        annotations=args.annotations, attention=args.attention, crop_frames=args.crop,
        stream_window=args.window if args.attention == "streaming" else 0,
        preset=args.preset, targets=args.targets, label_text=args.label_text,
        background_eos=args.background_eos, val_data=args.val_data, val_every=args.val_every,
        val_windows=args.val_windows, val_split=args.val_split, patience=args.patience, **values,
    )  # fmt: skip


def run_train(args: argparse.Namespace) -> int:
    from training.train import train

    result = train(train_config(args, args.out))
    print(
        f"checkpoint {result.checkpoint}: {result.steps} steps in {result.seconds:.1f} s, "
        f"last loss {result.last_loss:.4f} ({result.windows} windows per epoch)"
    )
    if result.best_val_loss is not None:
        flat = "; stopped: flat" if result.stopped_flat else ""
        print(f"validation loss: best {result.best_val_loss:.4f} at step {result.best_step}{flat}")
    return 0
