"""COIN-style procedure annotations: videos with a task and ordered step segments.

    {"database": {"<video id>": {"class": "make tea", "recipe_type": 1,
                                 "subset": "training" | "testing" | "validation",
                                 "duration": 61.5,
                                 "annotation": [{"id": "0", "segment": [2.0, 9.5],
                                                 "label": "boil water"}, ...]}}}

This is COIN.json's layout (`recipe_type`, `duration`, `id` optional). Times are seconds.
Step classes are ordered by numeric `id` when every id is a number (COIN's global step
ids), else by first appearance; tasks by `recipe_type` when every video has one, else by
first appearance — so the class order comes from the file, not from which split is read.
Every problem is a ConfigError that names the video and the field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.errors import ConfigError

COIN_FILE = "coin.json"  # a dataset folder's default annotation file
SUBSETS = {
    "training": "train",
    "train": "train",
    "testing": "test",
    "test": "test",
    # Held-out videos for a validation loss (`gad train --val-data`): not in COIN's file.
    "validation": "val",
    "val": "val",
}


@dataclass(frozen=True)
class CoinStep:
    label: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class CoinVideo:
    video_id: str
    task: str
    split: str  # "train" | "test" | "val"
    steps: tuple[CoinStep, ...]  # sorted by start


@dataclass(frozen=True)
class CoinAnnotations:
    path: Path
    videos: tuple[CoinVideo, ...]
    step_names: tuple[str, ...]
    task_names: tuple[str, ...]

    def split(self, split: str) -> list[CoinVideo]:
        if split not in ("train", "test", "val"):
            raise ConfigError(f"split must be 'train', 'test' or 'val', got {split!r}")
        return [v for v in self.videos if v.split == split]


def load_coin(path: Path) -> CoinAnnotations:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"annotation file {path} not found")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    database = data.get("database") if isinstance(data, dict) else None
    if not isinstance(database, dict) or not database:
        raise ConfigError(f'{path}: expected {{"database": {{video id: {{...}}}}}} with videos')
    videos, step_ids, task_ids = [], {}, {}
    for video_id, entry in database.items():
        video = _video(path, str(video_id), entry)
        videos.append(video)
        _agree(task_ids, video.task, entry.get("recipe_type"), f"{path}: task", "recipe_type")
        for step, raw in zip(video.steps, _sorted_raw(entry), strict=True):
            _agree(step_ids, step.label, raw.get("id"), f"{path}: step", "id")
    return CoinAnnotations(
        path=path,
        videos=tuple(videos),
        step_names=_ordered(step_ids),
        task_names=_ordered(task_ids),
    )


def _video(path: Path, video_id: str, entry: Any) -> CoinVideo:
    where = f"{path}: video {video_id!r}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be an object")
    task = entry.get("class")
    if not isinstance(task, str) or not task.strip():
        raise ConfigError(f'{where} needs a task name in "class"')
    subset = entry.get("subset")
    if subset not in SUBSETS:
        raise ConfigError(f"{where}: subset {subset!r} is not one of {sorted(SUBSETS)}")
    raw_steps = entry.get("annotation")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ConfigError(f'{where} has no step segments in "annotation"')
    steps = []
    for i, raw in enumerate(_sorted_raw(entry)):
        label = raw.get("label") if isinstance(raw, dict) else None
        segment = raw.get("segment") if isinstance(raw, dict) else None
        if not isinstance(label, str) or not label.strip():
            raise ConfigError(f"{where}: step {i} needs a label")
        if (
            not isinstance(segment, list)
            or len(segment) != 2
            or not all(isinstance(x, int | float) and math.isfinite(x) for x in segment)
        ):
            raise ConfigError(f"{where}: step {label!r} needs segment [start, end] in seconds")
        start, end = float(segment[0]), float(segment[1])
        if start < 0 or end <= start:
            raise ConfigError(
                f"{where}: step {label!r} has segment [{start:g}, {end:g}]: needs 0 <= start < end"
            )
        steps.append(CoinStep(label.strip(), start, end))
    return CoinVideo(video_id, task.strip(), SUBSETS[subset], tuple(steps))


def _sorted_raw(entry: dict) -> list[Any]:
    raw = entry.get("annotation") or []

    def start(step: Any) -> float:
        try:
            return float(step["segment"][0])
        except (TypeError, KeyError, IndexError, ValueError):
            return 0.0

    return sorted(raw, key=start)


def _agree(seen: dict[str, Any], name: str, key: Any, what: str, field: str) -> None:
    """One name per id and one id per name, across the whole file."""
    if name in seen and seen[name] != key:
        raise ConfigError(f"{what} {name!r} has {field} {seen[name]!r} and {key!r}")
    if key is not None and any(k == key and n != name for n, k in seen.items()):
        other = next(n for n, k in seen.items() if k == key)
        raise ConfigError(f"{what}s {other!r} and {name!r} share {field} {key!r}")
    seen.setdefault(name, key)


def _ordered(ids: dict[str, Any]) -> tuple[str, ...]:
    """Names by numeric id when every name has one, else in order of first appearance."""
    try:
        keys = {name: int(key) for name, key in ids.items()}
    except (TypeError, ValueError):
        return tuple(ids)
    return tuple(sorted(ids, key=keys.__getitem__))
