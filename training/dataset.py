"""Feature videos in the standard OAD layout, and the training windows drawn from them.

    ROOT/data_info.json
    ROOT/<feature_dir>/<session>.npy      [frames, D] per feature dir, concatenated on D
                                          (or <session>.pt, a torch tensor: Ego4D-GoalStep)
    ROOT/target_perframe/<session>.npy    [frames, classes] one-hot (multi-hot allowed)

One class serves every dataset (THUMOS, TVSeries, EK100, CrossTask, Ego4D-GoalStep, our
synthetic one): what differs is data, in data_info.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.errors import ConfigError
from runtime.windowing import WindowSpec, build_window
from training.data_info import DataInfo


@dataclass
class FeatureVideo:
    session: str
    features: np.ndarray  # [T, D] (memory-mapped for a single feature dir)
    targets: np.ndarray  # [T, C] in data class space
    labels: np.ndarray  # [T] data class index (argmax of targets)

    def __len__(self) -> int:
        return len(self.labels)


def previous_action(
    labels: np.ndarray,
    t: int,
    *,
    short: int,
    background: int | None,
    ignore: int | None,
    rule: str = "first",
) -> int:
    """The previous action of frame t: among the short window's frames (t-short+1 .. t)
    whose class is an action — not background, not the ignored class — and differs from
    frame t's class, -1 when there is none, else

      first  the authors' rule: the actions in order with repeats dropped, each kept at
             its first occurrence, and the last of them — [A, B, A, current] gives B.
             (Their comment says "remove duplicate actions but keep order"; the most
             recent action, A here, is what that reads like it means: `last`.)
      last   the most recent one — [A, B, A, current] gives A.
    """
    if short <= 0:
        raise ConfigError(f"short window must be > 0 frames, got {short}")
    if rule not in ("first", "last"):
        raise ConfigError(f"previous-action rule must be 'first' or 'last', got {rule!r}")
    current = int(labels[t])
    window = [int(x) for x in labels[max(t - short + 1, 0) : t]]
    actions = [x for x in window if x not in (background, ignore, current)]
    if not actions:
        return -1
    if rule == "last":
        return actions[-1]
    return list(dict.fromkeys(actions))[-1]  # first occurrences, in order


def previous_actions(
    labels: np.ndarray,
    *,
    short: int,
    background: int | None,
    ignore: int | None,
    rule: str = "first",
) -> np.ndarray:
    """`previous_action` of every frame, [T] (-1: none)."""
    return np.array(
        [
            previous_action(labels, t, short=short, background=background, ignore=ignore, rule=rule)
            for t in range(len(labels))
        ],
        dtype=np.int64,
    )


def _load_features(path: Path) -> np.ndarray:
    """A session's feature array: `.npy` memory-mapped, or the `.pt` tensor the authors
    keep Ego4D-GoalStep's DINOv2 features in."""
    if path.suffix == ".pt":
        import torch  # only for .pt feature files (training installs have it)

        array = torch.load(path, map_location="cpu", weights_only=True)
        return array.float().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
    return np.load(path, mmap_mode="r")


def _feature_path(folder: Path, session: str) -> Path:
    path = folder / f"{session}.npy"
    if not path.is_file() and (folder / f"{session}.pt").is_file():
        return folder / f"{session}.pt"
    return path


def load_video(info: DataInfo, session: str) -> FeatureVideo:
    parts = []
    for feature_dir in info.feature_dirs:
        path = _feature_path(info.root / feature_dir, session)
        if not path.is_file():
            raise ConfigError(f"missing feature file {path}")
        array = _load_features(path)
        if array.ndim != 2:
            raise ConfigError(f"{path} has shape {list(array.shape)}, expected [frames, features]")
        parts.append(array)
    target_path = info.root / info.target_dir / f"{session}.npy"
    if not target_path.is_file():
        raise ConfigError(f"missing target file {target_path}")
    targets = np.load(target_path, mmap_mode="r")
    n_classes = len(info.class_names)
    if targets.ndim != 2 or targets.shape[1] != n_classes:
        raise ConfigError(
            f"{target_path} has shape {list(targets.shape)}, expected [frames, {n_classes}] "
            f"({n_classes} classes in data_info.json)"
        )
    lengths = {len(p) for p in parts} | {len(targets)}
    if len(lengths) != 1:
        sizes = ", ".join(f"{d}: {len(p)}" for d, p in zip(info.feature_dirs, parts, strict=True))
        raise ConfigError(
            f"session {session}: feature and target lengths differ ({sizes}, "
            f"{info.target_dir}: {len(targets)})"
        )
    features = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
    labels = np.asarray(targets).argmax(axis=1)
    if (np.asarray(targets).sum(axis=1) == 0).any():
        raise ConfigError(f"{target_path} has frames with no class set (all-zero rows)")
    return FeatureVideo(
        session=session,
        features=features,
        targets=targets,
        labels=labels,
    )


def load_split(info: DataInfo, split: str, *, limit: int | None = None) -> list[FeatureVideo]:
    sessions = info.sessions(split)[:limit]
    if not sessions:
        raise ConfigError(f"dataset {info.name} has no {split} sessions")
    videos = [load_video(info, s) for s in sessions]
    dims = {v.features.shape[1] for v in videos}
    if len(dims) != 1:
        raise ConfigError(f"feature sizes differ across {split} sessions: {sorted(dims)}")
    return videos


class TrainWindows:
    """Training samples: every `short_frames`-th frame (label = that frame's class) with a
    random phase per epoch, frames labelled with the ignore class skipped.

    Items are (window [L+S, D] float32, mask [L+S] uint8, label, previous) with labels in
    model class space; `previous` is the previous action inside the short window
    (`previous_action`, by `info.previous_rule`) when `info.previous_action` is set, else
    -1 (none, as for THUMOS). Works as a torch Dataset (len + getitem) without importing torch.
    """

    def __init__(self, videos: list[FeatureVideo], info: DataInfo, spec: WindowSpec, seed: int = 0):
        self.videos, self.info, self.spec, self.seed = videos, info, spec, seed
        self.index: list[tuple[int, int]] = []
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        rng = np.random.default_rng([self.seed, epoch])
        stride = self.spec.short_frames
        index = []
        for v, video in enumerate(self.videos):
            phase = int(rng.integers(stride))
            for t in range(phase, len(video), stride):
                if video.labels[t] != self.info.ignore_index:
                    index.append((v, t))
        self.index = index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, int, int]:
        v, t = self.index[i]
        video = self.videos[v]
        window, mask = build_window(video.features, t, self.spec)
        previous = self.previous(v, t)
        return (
            window,
            mask,
            self.info.to_model_index(int(video.labels[t])),
            self.info.to_model_index(previous) if previous >= 0 else -1,
        )

    def previous(self, v: int, t: int) -> int:
        """The previous action of frame t of video v (data class index), -1 when none."""
        if not self.info.previous_action:
            return -1
        return previous_action(
            self.videos[v].labels,
            t,
            short=self.spec.short_frames,
            background=self.info.background_index,
            ignore=self.info.ignore_index,
            rule=self.info.previous_rule,
        )
