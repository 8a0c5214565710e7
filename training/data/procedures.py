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
from training.data_info import DATA_INFO

BACKGROUND = "background"
TRAINING, TESTING = "training", "testing"  # COIN's subset names

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


@dataclass(frozen=True)
class ProcedureConfig:
    videos_train: int = 120
    videos_test: int = 36
    feature_dim: int = 64
    fps: float = 2.0
    min_step: int = 6  # rows
    max_step: int = 16
    min_gap: int = 1  # background rows before, between and after steps
    max_gap: int = 6
    noise: float = 0.35
    seed: int = 0
    name: str = "PROCEDURES"

    def __post_init__(self) -> None:
        if self.videos_train < 0 or self.videos_test < 0:
            raise ConfigError(
                f"video counts must be >= 0, got {self.videos_train} / {self.videos_test}"
            )
        if self.feature_dim < 1:
            raise ConfigError(f"feature_dim must be >= 1, got {self.feature_dim}")
        if self.fps <= 0:
            raise ConfigError(f"fps must be positive, got {self.fps}")
        if not 2 <= self.min_step <= self.max_step:
            raise ConfigError(
                f"step rows need 2 <= min_step <= max_step, got {self.min_step}..{self.max_step}"
            )
        if not 0 <= self.min_gap <= self.max_gap:
            raise ConfigError(
                f"gap rows need 0 <= min_gap <= max_gap, got {self.min_gap}..{self.max_gap}"
            )
        if self.noise < 0:
            raise ConfigError(f"noise must be >= 0, got {self.noise}")


def class_names() -> list[str]:
    """Per-frame classes: background, then STEPS (step index i → class i + 1)."""
    return [BACKGROUND, *STEPS]


@dataclass(frozen=True)
class StepSegment:
    step: int  # index in STEPS
    start: int  # first row
    end: int  # one past the last row


class _World:
    """The fixed random directions that features are built from."""

    def __init__(self, dim: int, rng: np.random.Generator) -> None:
        def unit() -> np.ndarray:
            v = rng.normal(size=dim)
            return v / np.linalg.norm(v)

        self.objects = {obj: unit() * 1.5 for obj in OBJECTS}
        self.directions = {d: unit() for d in dict.fromkeys(d for d, _ in VERBS.values())}
        self.background = unit()
        self.drift = [unit() for _ in range(4)]

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

    features = np.concatenate(parts)
    frames = len(features)
    # Scene drift: slow random walks along a few directions, shared by every class.
    walk = np.cumsum(rng.normal(scale=0.08, size=(frames, len(world.drift))), axis=0)
    features = features + walk @ np.stack(world.drift)
    features = features + rng.normal(scale=cfg.noise, size=features.shape)
    return features.astype(np.float32), np.asarray(labels, dtype=np.int64), segments


def _split_tasks(count: int, rng: np.random.Generator) -> list[str]:
    """`count` tasks, cycling through TASKS (balanced to within one video), shuffled."""
    names = list(TASKS)
    cycle = [names[i % len(names)] for i in range(count)]
    return [cycle[i] for i in rng.permutation(count)]


def write_procedure_dataset(out: Path, cfg: ProcedureConfig) -> dict[str, object]:
    """Write the dataset under `out`; returns a summary. Same seed, same bytes."""
    out = Path(out)
    rng = np.random.default_rng(cfg.seed)
    world = _World(cfg.feature_dim, rng)
    feature_dir, target_dir = "features", "target_perframe"
    (out / feature_dir).mkdir(parents=True, exist_ok=True)
    (out / target_dir).mkdir(parents=True, exist_ok=True)
    names = class_names()
    task_index = {task: i for i, task in enumerate(TASKS)}
    sessions: dict[str, list[str]] = {"train": [], "test": []}
    database: dict[str, dict[str, object]] = {}
    frames = 0
    for split, count, subset in (
        ("train", cfg.videos_train, TRAINING),
        ("test", cfg.videos_test, TESTING),
    ):
        for i, task in enumerate(_split_tasks(count, rng)):
            session = f"{split}_{i:04d}"
            features, labels, segments = procedure_video(world, cfg, task, rng)
            targets = np.zeros((len(labels), len(names)), dtype=np.float32)
            targets[np.arange(len(labels)), labels] = 1.0
            np.save(out / feature_dir / f"{session}.npy", features)
            np.save(out / target_dir / f"{session}.npy", targets)
            sessions[split].append(session)
            frames += len(labels)
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
    info = {
        cfg.name: {
            "class_names": names,
            "background_index": 0,
            "ignore_index": None,
            "fps": cfg.fps,
            "feature_dirs": [feature_dir],
            "target_dir": target_dir,
            "train_session_set": sessions["train"],
            "test_session_set": sessions["test"],
        }
    }
    (out / DATA_INFO).write_text(json.dumps(info, indent=2) + "\n")
    (out / COIN_FILE).write_text(json.dumps({"database": database}, indent=2) + "\n")
    return {
        "dataset": cfg.name,
        "tasks": len(TASKS),
        "steps": len(STEPS),
        "videos": cfg.videos_train + cfg.videos_test,
        "frames": frames,
        "feature_dim": cfg.feature_dim,
    }
