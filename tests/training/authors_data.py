"""The authors' dataset files, exactly as released, and dataset folders built around them.

`authors/` holds their two `data_info.json` files (github.com/pangzhan27/GAD at commit
1ba0a6c3b7a0a4c24d1d612e58158b86edd25b6d), gzipped byte for byte:

    CrossTask.data_info.json.gz       datasets/CrossTask/data_info.json: TVSeries, THUMOS,
                                      EK55, EK100, CrossTask
    Ego4D-GoalStep.data_info.json.gz  datasets/Ego4D-GoalStep/data_info.json: Ego4DGoal

`write_authors_dataset` puts one of them, unchanged, in a folder with synthetic feature
and target arrays of the shapes the preset expects (a few sessions).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from functools import cache
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent / "authors"
# sha256 of the released files (before gzip).
FILES = {
    "CrossTask": (
        "CrossTask.data_info.json.gz",
        "dce86e6c00accb57396107fc2c0a8c3215f051d5bf160fd907a133e3e8e8bc6a",
    ),
    "Ego4D-GoalStep": (
        "Ego4D-GoalStep.data_info.json.gz",
        "246a9270dc82cc505a8273917b71a5a4bcd6c4a3aaa11364d577c2fbbe9be4fb",
    ),
}
# Which released file holds each dataset entry.
ENTRY_FILE = {
    "TVSeries": "CrossTask",
    "THUMOS": "CrossTask",
    "EK55": "CrossTask",
    "EK100": "CrossTask",
    "CrossTask": "CrossTask",
    "Ego4DGoal": "Ego4D-GoalStep",
}


@cache
def authors_file(name: str) -> bytes:
    """The released file's bytes (checked against its sha256)."""
    file, digest = FILES[name]
    data = gzip.decompress((HERE / file).read_bytes())
    assert hashlib.sha256(data).hexdigest() == digest, f"{file} is not the released file"
    return data


@cache
def authors_entries() -> dict[str, dict]:
    """Every dataset entry of both files, by name."""
    entries: dict[str, dict] = {}
    for name in FILES:
        entries.update(json.loads(authors_file(name)))
    return entries


def write_authors_dataset(
    root: Path,
    entry: str,
    *,
    feature_dir: str,
    feature_dim: int,
    sessions: int = 2,
    frames: int = 48,
    pt: bool = False,
    seed: int = 0,
) -> Path:
    """`root/data_info.json` = the released file holding `entry`, unchanged; features
    [frames, feature_dim] (`.pt` tensors with `pt`, as Ego4D-GoalStep's) and one-hot
    targets for the first `sessions` train and test (and val) sessions, with runs of
    actions, background between them and one action repeated, so previous actions occur."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "data_info.json").write_bytes(authors_file(ENTRY_FILE[entry]))
    info = authors_entries()[entry]
    classes = len(info["class_names"])
    rng = np.random.default_rng(seed)
    (root / feature_dir).mkdir(parents=True, exist_ok=True)
    (root / "target_perframe").mkdir(parents=True, exist_ok=True)
    splits = ("train_session_set", "test_session_set", "val_session_set")
    for split in splits:
        for session in info.get(split, [])[:sessions]:
            actions = rng.choice(np.arange(1, classes), size=3, replace=False)
            run = frames // 8
            labels = np.zeros(frames, dtype=np.int64)  # background (index 0)
            for i, action in enumerate([*actions, actions[0]]):  # [A, B, C, A]
                labels[(2 * i + 1) * run : (2 * i + 2) * run] = action
            targets = np.eye(classes, dtype=np.float32)[labels]
            features = rng.normal(size=(frames, feature_dim)).astype(np.float32)
            if pt:
                import torch

                torch.save(torch.from_numpy(features), root / feature_dir / f"{session}.pt")
            else:
                np.save(root / feature_dir / f"{session}.npy", features)
            np.save(root / "target_perframe" / f"{session}.npy", targets)
    return root
