"""Write small datasets in the standard OAD layout (THUMOS-style) for the tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CLASSES = ["Background", "Jump", "Throw", "Ambiguous"]


def write_thumos_like(root: Path, *, sessions: dict[str, int] | None = None, seed: int = 0) -> Path:
    """Two feature folders (rgb 6-d, flow 2-d), targets with an Ambiguous class (index 3)."""
    sessions = sessions or {"video_validation_1": 20, "video_validation_2": 15, "video_test_1": 12}
    rng = np.random.default_rng(seed)
    for folder in ("rgb_kinetics_resnet50", "flow_kinetics_bninception", "target_perframe"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for session, frames in sessions.items():
        labels = np.zeros(frames, dtype=int)
        labels[3:8] = 1
        labels[8] = 3  # ambiguous boundary frame
        labels[10:] = 2
        targets = np.eye(len(CLASSES), dtype=np.float32)[labels]
        np.save(
            root / "rgb_kinetics_resnet50" / f"{session}.npy",
            rng.normal(size=(frames, 6)).astype(np.float32),
        )
        np.save(
            root / "flow_kinetics_bninception" / f"{session}.npy",
            rng.normal(size=(frames, 2)).astype(np.float32),
        )
        np.save(root / "target_perframe" / f"{session}.npy", targets)
    info = {
        "THUMOS": {
            "class_names": CLASSES,
            "ignore_index": 3,
            "train_session_set": [s for s in sessions if "validation" in s],
            "test_session_set": [s for s in sessions if "test" in s],
        }
    }
    (root / "data_info.json").write_text(json.dumps(info))
    return root
