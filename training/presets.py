"""The paper's runs, one preset per dataset: `gad train DATA --preset ek100`.

Each preset carries what the authors' release (github.com/pangzhan27/GAD: `OAD/oad_gad.py`,
`OAD/script/oad_train.sh`, `Offline/gad.py`, `Offline/script/train.sh`) does for that
dataset: which `data_info.json` entry and feature folder it reads, the feature size and
fps, the window, the previous-action rule, the background weight, and the schedule. A
flag given on the command line wins over the preset; a preset also checks that the data
is what it expects (fps, feature size), so a wrong folder fails before training.

Their batch is 16 windows per device with 2 accumulation steps (COIN: 1 clip × 8
accumulation × 2 GPUs); ours takes the same number of samples per optimizer step in one
batch (32; COIN 16). Their backbone is Llama-3.2-1B-Instruct for the online datasets (the
COIN script names Meta-Llama-3-8B-Instruct): a preset asks for `--backbone PATH` (its
Hugging Face folder; `--backbone tiny` for a trial run) rather than guess where it is.
TVSeries has a data_info.json entry but no script in the release: its preset follows
THUMOS's (the other dataset without previous actions, same fps and features).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.errors import ConfigError


@dataclass(frozen=True)
class Preset:
    """One dataset's rules, as the authors' code has them."""

    name: str
    dataset: str | None  # the data_info.json entry (None: the clip task's annotations)
    task: str  # "frame" (online detection) or "clip" (COIN's offline tasks)
    feature_dirs: tuple[str, ...] | None  # None: whatever data_info.json names
    feature_dim: int  # their `visual_dim` (COIN: 10 tokens x 1024, SigLIP-L/16-384)
    fps: float
    long_frames: int
    short_frames: int  # also the training stride, as theirs (`--stride` = `--short_len`)
    long_stride: int
    previous_action: str  # "first" (their rule) or "none"
    background_weight: float  # their `stream_loss_weight`
    epochs: int
    batch_size: int  # samples per optimizer step
    lr: float
    warmup: float
    lora_rank: int
    lora_alpha: int
    lora_dropout: float
    lm_weight: float  # their `gen_cls_lmd`
    eval_split: str  # the split their evaluation reads
    backbone: str  # the LLM their script trains
    clip_frames: int = 0
    clip_tokens_per_frame: int = 1
    clip_frame_tokens: str = "expand"
    clip_separator: str | None = None
    note: str = ""

    def train_values(self) -> dict[str, Any]:
        """The TrainConfig fields this preset sets (the command line may override each)."""
        values: dict[str, Any] = {
            "dataset": self.dataset,
            "feature_dirs": self.feature_dirs,
            "fps": self.fps,
            "task": self.task,
            "lm_weight": self.lm_weight,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "warmup_ratio": self.warmup,
        }
        if self.task == "frame":
            values.update(
                long_frames=self.long_frames,
                short_frames=self.short_frames,
                long_stride=self.long_stride,
                previous_action=self.previous_action,
                background_weight=self.background_weight,
            )
        else:
            values.update(
                clip_frames=self.clip_frames,
                clip_tokens_per_frame=self.clip_tokens_per_frame,
                clip_frame_tokens=self.clip_frame_tokens,
                clip_separator=self.clip_separator,
            )
        return values

    def check_data(self, *, feature_dim: int, fps: float, feature_dirs_given: bool) -> None:
        """Refuse data that is not what this preset's run reads."""
        if abs(fps - self.fps) > 1e-6:
            raise ConfigError(
                f"preset {self.name}: the authors' features are {self.fps:g} fps, "
                f"the data says {fps:g} (data_info.json `fps`)"
            )
        if not feature_dirs_given and feature_dim != self.feature_dim:
            raise ConfigError(
                f"preset {self.name}: the authors' features are {self.feature_dim}-d, "
                f"the data's rows are {feature_dim}-d (pass --feature-dirs if yours differ)"
            )


_ONLINE: dict[str, Any] = {
    "task": "frame",
    "long_frames": 128,
    "long_stride": 1,
    "epochs": 50,
    "batch_size": 32,
    "lr": 1e-4,
    "warmup": 0.1,
    "lora_rank": 128,
    "lora_alpha": 256,
    "lora_dropout": 0.05,
    "lm_weight": 1.0,
    "eval_split": "test",
    "backbone": "Llama-3.2-1B-Instruct",
}

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="thumos", dataset="THUMOS", feature_dirs=("rgb_kinetics_resnet50",),
            feature_dim=2048, fps=4, short_frames=32, previous_action="none",
            background_weight=1.0, **_ONLINE,
        ),
        Preset(
            name="tvseries", dataset="TVSeries", feature_dirs=("rgb_kinetics_resnet50",),
            feature_dim=2048, fps=4, short_frames=32, previous_action="none",
            background_weight=1.0, **_ONLINE,
            note="no script in the release: THUMOS's rules",
        ),
        Preset(
            name="ek100", dataset="EK100", feature_dirs=("rgb_kinetics_bninception",),
            feature_dim=1024, fps=4, short_frames=20, previous_action="first",
            background_weight=0.5, **_ONLINE,
        ),
        Preset(
            name="crosstask", dataset="CrossTask",
            feature_dirs=("vitg14_rgb_fps1_h224_w224",), feature_dim=1536, fps=1,
            short_frames=20, previous_action="first", background_weight=0.2, **_ONLINE,
            note="their evaluation also drops 22 test videos (CrossTask.DISCARD)",
        ),
        Preset(
            name="ego4d", dataset="Ego4DGoal", feature_dirs=("features/dinov2-giant",),
            feature_dim=1536, fps=1, short_frames=16, previous_action="first",
            background_weight=0.5, **{**_ONLINE, "epochs": 20, "eval_split": "val"},
            note="features as .pt tensors; evaluated on val (test has no public labels)",
        ),
        Preset(
            name="coin", dataset=None, task="clip", feature_dirs=None,
            feature_dim=10 * 1024, fps=2, long_frames=0, short_frames=1, long_stride=1,
            previous_action="none", background_weight=1.0, epochs=5, batch_size=16,
            lr=1e-4, warmup=0.05, lora_rank=128, lora_alpha=256, lora_dropout=0.05,
            lm_weight=1.0, eval_split="test", backbone="Meta-Llama-3-8B-Instruct",
            clip_frames=1200, clip_tokens_per_frame=10, clip_frame_tokens="split",
            clip_separator=",",
            note="rows are a frame's SigLIP [CLS] + 3x3 pooled patches, 10 x 1024",
        ),
    )
}  # fmt: skip


def preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"preset must be one of {', '.join(PRESETS)}; got {name!r}") from None


def preset_table() -> str:
    """The presets as a Markdown table (docs: docs/training.md, design.md)."""
    head = (
        "| preset | data_info entry | features (d, fps) | window (long + short) | "
        "previous action | background weight | epochs | batch | warm-up | LoRA r/α | "
        "backbone |\n|---|---|---|---|---|---|---:|---:|---:|---|---|"
    )
    rows = []
    for p in PRESETS.values():
        dirs = ", ".join(p.feature_dirs) if p.feature_dirs else "data_info.json's"
        window = (
            f"clip ≤ {p.clip_frames} rows, {p.clip_tokens_per_frame} tokens/row"
            if p.task == "clip"
            else f"{p.long_frames} + {p.short_frames}"
        )
        rows.append(
            f"| {p.name} | {p.dataset or 'coin.json'} | {dirs} ({p.feature_dim}, {p.fps:g}) | "
            f"{window} | {p.previous_action} | {p.background_weight:g} | {p.epochs} | "
            f"{p.batch_size} | {p.warmup:g} | {p.lora_rank}/{p.lora_alpha} | {p.backbone} |"
        )
    return "\n".join([head, *rows])
