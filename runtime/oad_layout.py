"""The standard OAD feature layout, as written: one definition for every writer.

    ROOT/data_info.json                  {dataset name: entry} (training/data_info.py reads it)
    ROOT/<feature_dir>/<session>.npy     [rows, D] float32, row t at time t / fps
    ROOT/target_perframe/<session>.npy   [rows, C] float32, one class per row (multi-hot allowed)

`gad data extract` (training/data/extract.py) and the service's examples of a user's actions
(service/examples/) write through these, so `gad train` reads both the same way. numpy only
(the service imports it: no torch). Files are written atomically (a temporary file, then a
rename): an interrupted writer leaves whole files only.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from runtime.errors import ConfigError

DATA_INFO = "data_info.json"
TARGET_DIR = "target_perframe"
# Boundaries within this many seconds count as equal (CSV times are written in ms).
TIME_EPS = 1e-6


def feature_dir_name(encoder_name: str) -> str:
    """`efficientnet-lite0` → `rgb_efficientnet_lite0` (THUMOS-style: rgb_kinetics_resnet50)."""
    return "rgb_" + re.sub(r"[^a-z0-9]+", "_", encoder_name.lower()).strip("_")


def rows_between(start_s: float, end_s: float, rows: int, fps: float) -> np.ndarray:
    """[rows] bool: which rows a segment [start_s, end_s) covers. Row t stands for time
    t / fps (the start of its sampling slot, where its frame was taken: runtime/video.py)."""
    times = np.arange(rows) / fps
    inside: np.ndarray = (times >= start_s - TIME_EPS) & (times < end_s - TIME_EPS)
    return inside


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    """[rows] class indices → [rows, classes] float32 targets."""
    targets = np.zeros((len(labels), classes), np.float32)
    targets[np.arange(len(labels)), labels] = 1.0
    return targets


def atomic_save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


def atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def data_info_entry(
    *,
    class_names: list[str],
    fps: float,
    feature_dir: str,
    train: list[str],
    test: list[str],
    encoder: dict[str, Any] | None,
    background_index: int = 0,
    ignore_index: int | None = None,
    previous_action: bool = False,
) -> dict[str, Any]:
    """One dataset's entry of data_info.json (the keys training/data_info.py reads)."""
    return {
        "class_names": class_names,
        "background_index": background_index,
        "ignore_index": ignore_index,
        "fps": fps,
        "feature_dirs": [feature_dir],
        "target_dir": TARGET_DIR,
        "train_session_set": train,
        "test_session_set": test,
        "encoder": encoder,
        "previous_action": previous_action,  # none, as for THUMOS: true for procedural videos
    }


def write_data_info(root: Path, name: str, entry: dict[str, Any]) -> None:
    """Add (or replace) dataset `name`'s entry in `root/data_info.json`, keeping the others."""
    path = Path(root) / DATA_INFO
    entries: dict[str, Any] = {}
    if path.is_file():
        try:
            entries = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} exists but is not valid JSON: {exc}") from exc
    entries[name] = entry
    atomic_text(path, json.dumps(entries, indent=2) + "\n")
