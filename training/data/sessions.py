"""Which videos a dataset holds and which split each belongs to, for `gad data extract`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from runtime.errors import ConfigError
from training.data.annotations import VIDEO_EXTENSIONS, Annotations, session_name


def index_videos(folder: Path) -> dict[str, list[Path]]:
    """Session name → the video files in `folder` with that stem."""
    files: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS:
            files.setdefault(path.stem, []).append(path)
    return files


def read_split_file(path: Path) -> dict[str, str]:
    """Session → "train" | "test" from a JSON `{"train": [...], "test": [...]}`."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"split file {path} not found") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"split file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or set(data) - {"train", "test"} or not data:
        raise ConfigError(f'split file {path} must be {{"train": [...], "test": [...]}}')
    split: dict[str, str] = {}
    for part in ("train", "test"):
        for name in data.get(part, []):
            session = session_name(str(name))
            if split.get(session, part) != part:
                raise ConfigError(f"split file {path} puts {session} in both train and test")
            split[session] = part
    return split


def assign_split(
    sessions: list[str],
    annotations: Annotations,
    *,
    split_file: Path | None,
    test_fraction: float,
    seed: int,
) -> dict[str, str]:
    """Session → split: the split file, else the annotations' own, else a seeded fraction."""
    if split_file is not None:
        return read_split_file(split_file)
    if sessions and all(s in annotations.split_hints for s in sessions):
        return {s: annotations.split_hints[s] for s in sessions}
    ordered = sorted(sessions)
    n_test = round(len(ordered) * test_fraction)
    if test_fraction > 0 and len(ordered) > 1:
        n_test = min(max(n_test, 1), len(ordered) - 1)
    order = np.random.default_rng(seed).permutation(len(ordered))
    test = {ordered[i] for i in order[:n_test]}
    return {s: "test" if s in test else "train" for s in ordered}
