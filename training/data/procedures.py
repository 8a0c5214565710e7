"""A synthetic procedures benchmark (COIN-like): tasks made of ordered, shared steps.

Each video shows one task ("make tea") as its steps in order ("boil water", "add tea",
"pour water", "stir drink") with background between them. It serves three clip tasks:
step recognition (a step's frames → its step), task recognition (the whole annotated span
→ the task) and next-step forecasting (step i's frames → step i+1's label).

Steps are verb + object, and a step's features are the same whatever task it is in:

    object embedding  +  verb signal(progress)  +  scene drift  +  noise

Verbs that act on the same object share one direction and differ by the shape of their
signal over the step: a ramp up, a ramp down (its time-reversed copy) or an oscillation.
So a single frame of "boil water" at 30 % looks like "pour water" at 70 %, while the trend
over the step tells them apart; steps sharing a verb ("add coffee", "add tea") differ by
their object. Background frames are a background direction. Scene drift is a slow random
walk along a few directions shared by every class. No feature carries the task: it is read
from the sequence of steps only ("make omelette" is "scramble eggs" plus "add cheese"),
and since most steps have one successor, the next step is mostly, not always, predictable
from the current one ("boil water" is followed by "grind beans" or "add tea").

Written in the standard OAD layout (`features/`, `target_perframe/`, `data_info.json`, so
the frame-level model trains on it) plus `coin.json`, the step annotations in COIN's
format: `{"database": {video: {"class", "recipe_type", "subset", "duration",
"annotation": [{"id", "segment": [start_s, end_s], "label"}]}}}`, where `id` is the step's
index in STEPS (its target_perframe column is id + 1) and row t of a video stands for
time t / fps, so a step on rows a..b has segment [a / fps, (b + 1) / fps].
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.errors import ConfigError
from training.data.coin import COIN_FILE
from training.data.synthetic import FeatureLayout, SyntheticConfig, World, one_hot

BACKGROUND = "background"
TRAINING, TESTING = "training", "testing"  # COIN's subset names
VALIDATION = "validation"  # held-out videos for a validation loss (not in COIN's file)

# Task name → its steps in order. Steps are shared across tasks.
TASKS: dict[str, tuple[str, ...]] = {
    "make coffee": ("boil water", "grind beans", "add coffee", "pour water", "stir drink"),
    "make tea": ("boil water", "add tea", "pour water", "stir drink"),
    "make salad": ("wash vegetables", "cut vegetables", "add dressing", "mix salad"),
    "make omelette": ("crack eggs", "whisk eggs", "heat pan", "fry eggs", "add cheese"),
    "scramble eggs": ("crack eggs", "whisk eggs", "heat pan", "fry eggs"),
    "make sandwich": ("toast bread", "spread butter", "cut vegetables", "add cheese"),
}
# Every step once, in order of first appearance.
STEPS: tuple[str, ...] = tuple(dict.fromkeys(s for steps in TASKS.values() for s in steps))

# Verb → (direction, signal shape over the step). Verbs that share an object share a
# direction, so those steps differ only by the shape: "up" and "down" are time-reversed.
VERBS: dict[str, tuple[str, str]] = {
    "boil": ("liquid", "up"), "pour": ("liquid", "down"), "stir": ("liquid", "wave"),
    "crack": ("egg", "up"), "fry": ("egg", "down"), "whisk": ("egg", "wave"),
    "wash": ("prep", "up"), "cut": ("prep", "down"), "mix": ("prep", "wave"),
    "add": ("apply", "up"), "spread": ("apply", "down"), "grind": ("apply", "wave"),
    "heat": ("hot", "up"), "toast": ("hot", "down"),
}  # fmt: skip


def split_step(step: str) -> tuple[str, str]:
    """Step name → (verb, object): "boil water" → ("boil", "water")."""
    verb, obj = step.split(" ", 1)
    return verb, obj


OBJECTS: tuple[str, ...] = tuple(dict.fromkeys(split_step(s)[1] for s in STEPS))


@dataclass(frozen=True, kw_only=True)
class ProcedureConfig(SyntheticConfig):
    videos_train: int = 120
    videos_test: int = 36
    fps: float = 2.0
    min_step: int = 6  # rows
    max_step: int = 16
    min_gap: int = 1  # background rows before, between and after steps
    max_gap: int = 6
    name: str = "PROCEDURES"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 2 <= self.min_step <= self.max_step:
            raise ConfigError(
                f"step rows need 2 <= min_step <= max_step, got {self.min_step}..{self.max_step}"
            )


def class_names() -> list[str]:
    """Per-frame classes: background, then STEPS (step index i → class i + 1)."""
    return [BACKGROUND, *STEPS]


@dataclass(frozen=True)
class StepSegment:
    step: int  # index in STEPS
    start: int  # first row
    end: int  # one past the last row


class _World(World):
    """The fixed random directions that features are built from."""

    def __init__(self, dim: int, rng: np.random.Generator) -> None:
        directions = dict.fromkeys(d for d, _ in VERBS.values())
        super().__init__(dim, rng, objects=OBJECTS, directions=directions)

    def step_signal(self, step: str, progress: np.ndarray) -> np.ndarray:
        """[len(progress), D]: the step's signature, the same in every task."""
        verb, obj = split_step(step)
        direction, shape = VERBS[verb]
        ramp = 2.0 * progress - 1.0  # -1 → +1 over the step
        if shape == "up":
            value = ramp
        elif shape == "down":
            value = -ramp
        else:  # wave: two cycles per step, no net trend
            value = np.cos(4 * np.pi * progress)
        verb_part = 1.5 * value[:, None] * self.directions[direction][None, :]
        return self.objects[obj][None, :] + verb_part


def procedure_video(
    world: _World, cfg: ProcedureConfig, task: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[StepSegment]]:
    """(features [T, D] float32, labels [T] class index, step segments) for one video."""
    labels: list[int] = []
    parts: list[np.ndarray] = []
    segments: list[StepSegment] = []

    def gap() -> None:
        rows = int(rng.integers(cfg.min_gap, cfg.max_gap + 1))
        parts.append(np.tile(world.background, (rows, 1)))
        labels.extend([0] * rows)

    for step in TASKS[task]:
        gap()
        rows = int(rng.integers(cfg.min_step, cfg.max_step + 1))
        start = len(labels)
        parts.append(world.step_signal(step, np.linspace(0.0, 1.0, rows)))
        index = STEPS.index(step)
        labels.extend([index + 1] * rows)
        segments.append(StepSegment(step=index, start=start, end=start + rows))
    gap()

    features = world.drift_and_noise(np.concatenate(parts), cfg.noise, rng)
    return features.astype(np.float32), np.asarray(labels, dtype=np.int64), segments


def _split_tasks(count: int, rng: np.random.Generator) -> list[str]:
    """`count` tasks, cycling through TASKS (balanced to within one video), shuffled."""
    names = list(TASKS)
    cycle = [names[i % len(names)] for i in range(count)]
    return [cycle[i] for i in rng.permutation(count)]


def write_procedure_dataset(out: Path, cfg: ProcedureConfig) -> dict[str, object]:
    """Write the dataset under `out`; returns a summary. Same seed, same bytes."""
    rng = np.random.default_rng(cfg.seed)
    world = _World(cfg.feature_dim, rng)
    layout = FeatureLayout(out)
    names = class_names()
    task_index = {task: i for i, task in enumerate(TASKS)}
    database: dict[str, dict[str, object]] = {}
    # Val last: the train and test videos are the same bytes with or without it.
    for split, count, subset in (
        ("train", cfg.videos_train, TRAINING),
        ("test", cfg.videos_test, TESTING),
        ("val", cfg.videos_val, VALIDATION),
    ):
        for task in _split_tasks(count, rng):
            features, labels, segments = procedure_video(world, cfg, task, rng)
            session = layout.add(split, features, one_hot(labels, len(names)))
            database[session] = {
                "class": task,
                "recipe_type": task_index[task],
                "subset": subset,
                "duration": len(labels) / cfg.fps,
                "annotation": [
                    {
                        "id": str(seg.step),
                        "segment": [seg.start / cfg.fps, seg.end / cfg.fps],
                        "label": STEPS[seg.step],
                    }
                    for seg in segments
                ],
            }
    # Ordered steps: the previous step is informative, as in CrossTask.
    layout.write_info(cfg, names, ignore_index=None, previous_action=True)
    (layout.out / COIN_FILE).write_text(json.dumps({"database": database}, indent=2) + "\n")
    return {
        "dataset": cfg.name,
        "tasks": len(TASKS),
        "steps": len(STEPS),
        "videos": cfg.videos_train + cfg.videos_test + cfg.videos_val,
        "frames": layout.frames,
        "feature_dim": cfg.feature_dim,
    }
