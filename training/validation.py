"""Validation loss during training, and stopping once it has flattened (`gad train
--val-data DIR --val-every N --patience K`).

The losses are the run's own (CE and λ·LM for GAD, CE for discriminative, LM for
generative) on a fixed set of windows from held-out videos: another dataset folder with the
same classes (its `val` split if data_info.json has one, else its `test` split, or the split
named: `--val-split train` for a second dataset of the training kind), never the training
videos. The same windows every time (the first `windows` of a seeded shuffle, epoch 0's
frame phase), so the curve moves only with the model. For the clip task the items are the
held-out videos' step, task and next-step clips (coin.json's `validation` subset, else
`testing`), subsampled without jitter as evaluation does.

What is watched is what is served: the [CLS] head's CE where the model has one (GAD and
discriminative alike, so both stop by the same rule; GAD's LM term trains the backbone and
is logged beside it), the LM loss for the generative baseline. "Flat": the watched loss has
not improved by more than `min_delta` (relative) on its best for `patience` validations in
a row. With a patience the run's checkpoint is the one at the best validation (saved when it
improves), so what is evaluated after an early stop is the model that validated best;
without one, validation is logged and nothing else changes. Each validation is a line of
`val_log.jsonl` in the run folder."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from runtime.errors import ConfigError
from training.clips import ClipSamples, load_clip_videos, open_clip_source
from training.data_info import load_data_info
from training.dataset import TrainWindows, load_split

VAL_LOG = "val_log.jsonl"


@dataclass(frozen=True)
class ValSettings:
    data: Path
    every: int  # steps between validations
    windows: int = 512
    patience: int = 0  # validations without improvement before stopping; 0: never stop
    min_delta: float = 0.005  # an improvement is a relative drop of more than this
    split: str | None = None  # None: the val split if there is one, else test


class ValWindows:
    """The fixed validation items (windows, or clips for the clip task), the settings they
    were drawn by, and the losses of a model on them."""

    def __init__(self, settings: ValSettings, items: list[Any], split: str) -> None:
        if not items:
            raise ConfigError(f"--val-data {settings.data}: no labelled items in {split}")
        self.settings, self.items = settings, items

    @classmethod
    def frames(cls, settings: ValSettings, *, class_names: tuple[str, ...], spec: Any,
               like: Any, seed: int) -> ValWindows:  # fmt: skip
        """Windows of the per-frame task (`spec`), labelled by the training data's rules."""
        info = load_data_info(settings.data)
        _same("classes", info.model_class_names, class_names, settings)
        split = settings.split or ("val" if info.val_sessions else "test")
        # The training data's previous-action rule (the LM target GAD is trained on).
        info = replace(info, previous_action=like.previous_action, previous_rule=like.previous_rule)
        windows = TrainWindows(load_split(info, split), info, spec, seed=seed)
        return cls(settings, _first(windows, settings.windows, seed), split)

    @classmethod
    def clips(cls, settings: ValSettings, *, step_names: tuple[str, ...],
              task_names: tuple[str, ...], max_frames: int, seed: int) -> ValWindows:  # fmt: skip
        """Step, task and next-step clips of a COIN-style dataset (its coin.json and
        data_info.json), subsampled as evaluation does (no jitter)."""
        source = open_clip_source(settings.data)
        _same("steps", source.annotations.step_names, step_names, settings)
        _same("tasks", source.annotations.task_names, task_names, settings)
        split = settings.split or ("val" if source.annotations.split("val") else "test")
        samples = ClipSamples(load_clip_videos(source, split), max_frames, seed=seed)
        return cls(settings, _first(samples, settings.windows, seed), split)

    def losses(self, objective: torch.nn.Module, collate: Callable, device: Any,
               batch_size: int) -> dict[str, float]:  # fmt: skip
        """Mean losses over the windows, in eval mode: `loss` (the objective's total),
        `cls_loss` and `lm_loss` where the model has them, and `val_loss`, the one watched
        (cls_loss when there is a [CLS] head, else loss)."""
        was_training = objective.training
        objective.eval()
        sums: dict[str, float] = {}
        with torch.no_grad():
            for start in range(0, len(self.items), batch_size):
                items = self.items[start : start + batch_size]
                batch = {k: v.to(device) for k, v in collate(items).items()}
                output = objective(**batch)
                for key in ("loss", "cls_loss", "lm_loss"):
                    value = getattr(output, key, None)
                    if value is not None:
                        sums[key] = sums.get(key, 0.0) + float(value) * len(items)
        objective.train(was_training)
        means = {key: total / len(self.items) for key, total in sums.items()}
        means["val_loss"] = means.get("cls_loss", means["loss"])
        return means


def _same(
    what: str, found: tuple[str, ...], trained: tuple[str, ...], settings: ValSettings
) -> None:
    if tuple(found) != tuple(trained):
        raise ConfigError(
            f"--val-data {settings.data}: its {what} {list(found)} are not the training "
            f"data's {list(trained)}"
        )


def _first(items: Any, count: int, seed: int) -> list[Any]:
    """The first `count` items of a seeded shuffle: the same items every validation."""
    order = np.random.default_rng([seed, 11]).permutation(len(items))
    return [items[int(i)] for i in order[:count]]


@dataclass
class Plateau:
    """Best validation loss so far and how many validations since it improved."""

    settings: ValSettings
    best: float = float("inf")
    best_step: int = 0
    since: int = 0

    def update(self, step: int, loss: float) -> bool:
        """Record a validation; True when it improved on the best."""
        if loss < self.best * (1 - self.settings.min_delta):
            self.best, self.best_step, self.since = loss, step, 0
            return True
        self.since += 1
        return False

    @property
    def flat(self) -> bool:
        return self.settings.patience > 0 and self.since >= self.settings.patience

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step, "since": self.since}

    def restore(self, state: dict[str, Any] | None) -> None:
        if state:
            self.best, self.best_step = state["best"], state["best_step"]
            self.since = state["since"]


def log_validation(out: Path, record: dict[str, Any]) -> None:
    with (out / VAL_LOG).open("a") as handle:
        handle.write(json.dumps(record) + "\n")


def read_validation(out: Path) -> list[dict[str, Any]]:
    return read_jsonl(out / VAL_LOG)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """A JSON-lines log's records ([] when there is none)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
