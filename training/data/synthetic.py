"""What the synthetic feature datasets share (synth.py: verb + object actions for OAD,
procedures.py: tasks made of ordered steps): the config fields they have in common, the
random world their features are built from, and the standard OAD layout they are written in
(`features/`, `target_perframe/`, `data_info.json`).

A frame's features are a sum of fixed random unit directions (an object's, a verb's signal
over the action, the background's) plus scene drift (slow random walks along a few
directions, shared by every class) and Gaussian noise. Same seed, same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.errors import ConfigError
from training.data_info import DATA_INFO

FEATURE_DIR, TARGET_DIR = "features", "target_perframe"


@dataclass(frozen=True, kw_only=True)
class SyntheticConfig:
    """The fields every synthetic feature dataset has, checked once. The defaults are the
    OAD benchmark's (`gad data synth`); a dataset's config subclasses this, sets the
    defaults that differ and adds its own fields."""

    videos_train: int = 24
    videos_test: int = 8
    videos_val: int = 0  # held-out videos for a validation loss (`gad train --val-data`)
    feature_dim: int = 64
    fps: float = 4.0
    min_gap: int = 6  # background rows around the actions, at least
    max_gap: int = 30
    noise: float = 0.35  # feature noise std
    seed: int = 0
    name: str = "SYNTH"  # the dataset's key in data_info.json

    def __post_init__(self) -> None:
        if min(self.videos_train, self.videos_test, self.videos_val) < 0:
            raise ConfigError(
                f"video counts must be >= 0, got {self.videos_train} / {self.videos_test} / "
                f"{self.videos_val}"
            )
        if self.feature_dim < 1:
            raise ConfigError(f"feature_dim must be >= 1, got {self.feature_dim}")
        if self.fps <= 0:
            raise ConfigError(f"fps must be positive, got {self.fps}")
        if not 0 <= self.min_gap <= self.max_gap:
            raise ConfigError(
                f"gap rows need 0 <= min_gap <= max_gap, got {self.min_gap}..{self.max_gap}"
            )
        if self.noise < 0:
            raise ConfigError(f"noise must be >= 0, got {self.noise}")


class World:
    """The fixed random unit directions that features are built from, drawn in this order:
    one per object (length 1.5), one per verb direction, the background, four drift
    directions."""

    def __init__(
        self,
        dim: int,
        rng: np.random.Generator,
        *,
        objects: Iterable[str],
        directions: Iterable[str],
    ) -> None:
        def unit() -> np.ndarray:
            v = rng.normal(size=dim)
            return v / np.linalg.norm(v)

        self.objects = {obj: unit() * 1.5 for obj in objects}
        self.directions = {name: unit() for name in directions}
        self.background = unit()
        self.drift = [unit() for _ in range(4)]

    def drift_and_noise(
        self, features: np.ndarray, noise: float, rng: np.random.Generator
    ) -> np.ndarray:
        """`features` [T, D] plus scene drift (slow random walks along the drift
        directions, shared by every class) plus Gaussian noise of std `noise`."""
        walk = np.cumsum(rng.normal(scale=0.08, size=(len(features), len(self.drift))), axis=0)
        features = features + walk @ np.stack(self.drift)
        return features + rng.normal(scale=noise, size=features.shape)


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    """[T] class indices → [T, classes] float32 targets."""
    targets = np.zeros((len(labels), classes), dtype=np.float32)
    targets[np.arange(len(labels)), labels] = 1.0
    return targets


class FeatureLayout:
    """A dataset being written in the standard layout under `out`: per session
    `features/SESSION.npy` and `target_perframe/SESSION.npy`, then `data_info.json`."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        (self.out / FEATURE_DIR).mkdir(parents=True, exist_ok=True)
        (self.out / TARGET_DIR).mkdir(parents=True, exist_ok=True)
        self.sessions: dict[str, list[str]] = {"train": [], "test": [], "val": []}
        self.frames = 0

    def add(self, split: str, features: np.ndarray, targets: np.ndarray) -> str:
        """Save the next video of `split` ("train" | "test" | "val"); its session name."""
        session = f"{split}_{len(self.sessions[split]):04d}"
        np.save(self.out / FEATURE_DIR / f"{session}.npy", features)
        np.save(self.out / TARGET_DIR / f"{session}.npy", targets)
        self.sessions[split].append(session)
        self.frames += len(features)
        return session

    def write_info(
        self,
        cfg: SyntheticConfig,
        class_names: list[str],
        *,
        ignore_index: int | None,
        previous_action: bool,
    ) -> None:
        info = {
            cfg.name: {
                "class_names": class_names,
                "background_index": 0,
                "ignore_index": ignore_index,
                "fps": cfg.fps,
                "feature_dirs": [FEATURE_DIR],
                "target_dir": TARGET_DIR,
                "train_session_set": self.sessions["train"],
                "test_session_set": self.sessions["test"],
                "previous_action": previous_action,
            }
        }
        if self.sessions["val"]:
            info[cfg.name]["val_session_set"] = self.sessions["val"]
        (self.out / DATA_INFO).write_text(json.dumps(info, indent=2) + "\n")
