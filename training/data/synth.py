"""A synthetic OAD benchmark in the standard layout, built so the window matters.

Actions are verb + object ("open drawer", "close drawer", "pick up cup", ...), names that
share words the way real labels do. A frame's features are

    object embedding  +  verb signal(progress)  +  scene drift  +  noise

where the verb signals of a pair are time-reversed copies of each other: "open" ramps a
direction up over the action, "close" ramps the same direction down; "pick up" / "put down"
likewise on another direction; "wash" oscillates. So one frame of "open drawer" at 30 %
looks like "close drawer" at 70 %: only the window's trend tells them apart. Background
frames drift and sometimes show an object with no action. Actions follow a loose
procedure (an "open X" is usually followed by "close X"), so the previous action — part
of the GAD generation target — is informative. One frame at each action boundary is
labelled Ambiguous (the ignore class), as in THUMOS.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.data.synthetic import FeatureLayout, SyntheticConfig, World, one_hot

VERBS = ("open", "close", "pick up", "put down", "wash")
# (verb, object) pairs: objects that can be opened, and objects that can be handled.
ACTIONS = (
    ("open", "drawer"), ("close", "drawer"),
    ("open", "door"), ("close", "door"),
    ("open", "fridge"), ("close", "fridge"),
    ("pick up", "cup"), ("put down", "cup"),
    ("pick up", "knife"), ("put down", "knife"),
    ("wash", "cup"), ("wash", "knife"),
)  # fmt: skip
FOLLOW = {"open": "close", "pick up": "put down", "put down": "wash"}
BACKGROUND, AMBIGUOUS = "background", "ambiguous"


@dataclass(frozen=True, kw_only=True)
class SynthConfig(SyntheticConfig):
    """The shared fields keep their defaults (`SyntheticConfig` is this benchmark's)."""

    min_action: int = 12  # frames
    max_action: int = 40
    actions_per_video: tuple[int, int] = (6, 12)


def class_names() -> list[str]:
    return [BACKGROUND] + [f"{verb} {obj}" for verb, obj in ACTIONS] + [AMBIGUOUS]


class _World(World):
    """The fixed random directions that features are built from."""

    def __init__(self, dim: int, rng: np.random.Generator) -> None:
        objects = sorted({obj for _, obj in ACTIONS})
        super().__init__(dim, rng, objects=objects, directions=("open", "pick up", "wash"))

    def verb_signal(self, verb: str, progress: np.ndarray) -> np.ndarray:
        ramp = 2.0 * progress - 1.0  # -1 → +1 over the action
        if verb in ("open", "close"):
            value, direction = (ramp if verb == "open" else -ramp), self.directions["open"]
        elif verb in ("pick up", "put down"):
            value, direction = (ramp if verb == "pick up" else -ramp), self.directions["pick up"]
        else:  # wash: oscillation, two cycles per action
            value, direction = np.sin(4 * np.pi * progress), self.directions["wash"]
        return 1.5 * value[:, None] * direction[None, :]


def _next_action(previous: int | None, rng: np.random.Generator) -> int:
    if previous is not None:
        verb, obj = ACTIONS[previous]
        follow = FOLLOW.get(verb)
        if follow and (follow, obj) in ACTIONS and rng.random() < 0.7:
            return ACTIONS.index((follow, obj))
    return int(rng.integers(len(ACTIONS)))


def synth_video(
    world: _World, cfg: SynthConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(features [T, D] float32, targets [T, C] one-hot) for one untrimmed video."""
    n_classes = len(ACTIONS) + 2
    labels: list[int] = []
    feats: list[np.ndarray] = []
    previous = None
    for _ in range(int(rng.integers(*cfg.actions_per_video, endpoint=True))):
        gap = int(rng.integers(cfg.min_gap, cfg.max_gap + 1))
        bg = np.tile(world.background, (gap, 1))
        if rng.random() < 0.5:  # an object in view, nothing happening to it
            obj = list(world.objects)[int(rng.integers(len(world.objects)))]
            bg = bg + world.objects[obj]
        feats.append(bg)
        labels += [0] * gap
        action = _next_action(previous, rng)
        verb, obj = ACTIONS[action]
        length = int(rng.integers(cfg.min_action, cfg.max_action + 1))
        progress = np.linspace(0.0, 1.0, length)
        feats.append(world.objects[obj][None, :] + world.verb_signal(verb, progress))
        labels += [action + 1] * length
        previous = action
    tail = int(rng.integers(cfg.min_gap, cfg.max_gap + 1))
    feats.append(np.tile(world.background, (tail, 1)))
    labels += [0] * tail

    features = world.drift_and_noise(np.concatenate(feats), cfg.noise, rng)

    label_array = np.asarray(labels)
    ambiguous = n_classes - 1
    boundaries = np.flatnonzero(np.diff(label_array)) + 1  # first frame of each new run
    for b in boundaries:
        # The frame on the action side of each boundary is ambiguous.
        label_array[b if label_array[b] != 0 else b - 1] = ambiguous
    return features.astype(np.float32), one_hot(label_array, n_classes)


def write_synth_dataset(out: Path, cfg: SynthConfig) -> dict[str, object]:
    """Write the dataset under `out`; returns a summary. Same seed, same bytes."""
    rng = np.random.default_rng(cfg.seed)
    world = _World(cfg.feature_dim, rng)
    layout = FeatureLayout(out)
    # Val last: the train and test videos are the same bytes with or without it.
    splits = (("train", cfg.videos_train), ("test", cfg.videos_test), ("val", cfg.videos_val))
    for split, count in splits:
        for _ in range(count):
            layout.add(split, *synth_video(world, cfg, rng))
    names = class_names()
    # Actions follow a loose procedure: the previous action is informative, as in EK100.
    layout.write_info(cfg, names, ignore_index=len(names) - 1, previous_action=True)
    return {
        "dataset": cfg.name,
        "classes": len(names),
        "videos": cfg.videos_train + cfg.videos_test + cfg.videos_val,
        "frames": layout.frames,
        "feature_dim": cfg.feature_dim,
    }
