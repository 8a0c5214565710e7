"""`data_info.json`: the facts of a feature dataset, as LSTR/TeSTra/MAT and the GAD authors
lay them out — one entry per dataset name:

    {"THUMOS": {"class_names": ["Background", "BaseballPitch", ..., "Ambiguous"],
                "ignore_index": 21, "background_index": 0, "fps": 4,
                "feature_dirs": ["rgb_kinetics_resnet50"],
                "train_session_set": ["video_validation_0000051", ...],
                "test_session_set": ["video_test_0000004", ...]}}

The authors' files load as they are (their release's `datasets/CrossTask/data_info.json`
holds TVSeries, THUMOS, EK55, EK100 and CrossTask; `datasets/Ego4D-GoalStep/data_info.json`
holds Ego4DGoal), with their conventions: `ignore_index` is the class left out of the
model and of the scores (THUMOS's Ambiguous); -100 (TVSeries, Ego4D-GoalStep), or the
background index itself (EK100, CrossTask: background is never a scored action anyway),
means none. Keys they carry that we do not use (`data_root`, `num_classes`, `metrics`,
`goal_names`, `step2describ`, ...) are ignored; `num_classes`, when present, must match
the class names. A `val_session_set` is the `val` split (Ego4D-GoalStep, whose
`test_session_set` has no public labels: the authors evaluate on val).

Optional keys and their defaults: `background_index` 0, `ignore_index` null, `fps` 4,
`feature_dirs` ["rgb_kinetics_resnet50"], `target_dir` "target_perframe", `encoder` null
(the frame encoder that made the features, when `gad data extract` did),
`previous_action` false (true: GAD's LM target adds the previous action, ", {previous}",
the authors' rule over the short window, training/dataset.py — they do so for CrossTask,
EK100 and Ego4D-GoalStep; false, as for THUMOS, which has no previous actions: the label
alone; `gad train --preset` or `--previous-action` decides it for the authors' files,
which lack the key). Dataset facts live here or in a preset (training/presets.py), never
in code that sniffs the dataset's name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.errors import ConfigError
from runtime.oad_layout import DATA_INFO

__all__ = ["DATA_INFO", "DataInfo", "load_data_info"]
SPLITS = ("train", "test", "val")
PREVIOUS_RULES = ("first", "last")


@dataclass(frozen=True)
class DataInfo:
    name: str
    root: Path
    class_names: tuple[str, ...]
    ignore_index: int | None
    background_index: int | None
    fps: float
    feature_dirs: tuple[str, ...]
    target_dir: str
    train_sessions: tuple[str, ...]
    test_sessions: tuple[str, ...]
    # How the features were made when `gad data extract` wrote them: {"spec", "name",
    # "feature_dim", "preprocess"}; None for feature sets made elsewhere (THUMOS).
    encoder: dict[str, Any] | None = None
    # Whether GAD's LM target carries the previous action (training/dataset.py), and
    # by which rule: "first" (the authors': repeats dropped keeping the first occurrence,
    # then the last one left) or "last" (the most recent other action).
    previous_action: bool = False
    previous_rule: str = "first"
    val_sessions: tuple[str, ...] = ()

    def sessions(self, split: str) -> tuple[str, ...]:
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
        if split == "val" and not self.val_sessions:
            raise ConfigError(f"dataset {self.name} has no val_session_set: no val split")
        return {"train": self.train_sessions, "test": self.test_sessions}.get(
            split, self.val_sessions
        )

    @property
    def model_class_names(self) -> tuple[str, ...]:
        """Class names the model predicts: the ignored class (Ambiguous) left out."""
        return tuple(n for i, n in enumerate(self.class_names) if i != self.ignore_index)

    def to_model_index(self, index: int) -> int:
        """Data class index → model class index (the ignore index removed)."""
        if self.ignore_index is not None and index > self.ignore_index:
            return index - 1
        return index

    @property
    def model_background_index(self) -> int | None:
        return None if self.background_index is None else self.to_model_index(self.background_index)


def load_data_info(
    root: Path, name: str | None = None, *, feature_dirs: list[str] | None = None
) -> DataInfo:
    """Read `root/data_info.json`; `name` picks the dataset (optional when there is one)."""
    root = Path(root)
    path = root / DATA_INFO
    if not path.is_file():
        raise ConfigError(f"{path} not found: a dataset folder needs a {DATA_INFO}")
    try:
        entries: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if name is None:
        if len(entries) != 1:
            raise ConfigError(f"{path} holds datasets {sorted(entries)}: pick one with --dataset")
        name = next(iter(entries))
    if name not in entries:
        raise ConfigError(f"{path} has no dataset {name!r}; it has {sorted(entries)}")
    entry = entries[name]
    missing = {"class_names", "train_session_set", "test_session_set"} - set(entry)
    if missing:
        raise ConfigError(f"{path}: dataset {name!r} lacks {sorted(missing)}")
    class_names = tuple(entry["class_names"])
    n = len(class_names)
    if "num_classes" in entry and entry["num_classes"] != n:
        raise ConfigError(
            f"{path}: dataset {name!r} has num_classes {entry['num_classes']} but {n} class_names"
        )
    ignore = entry.get("ignore_index")
    background = entry.get("background_index", 0)
    if isinstance(ignore, int) and ignore < 0:
        ignore = None  # -100 (TVSeries, Ego4D-GoalStep): no ignored class
    elif ignore is not None and ignore == background:
        ignore = None  # EK100, CrossTask: the background, which is trained and never scored
    for key, value in (("ignore_index", ignore), ("background_index", background)):
        if value is not None and (not isinstance(value, int) or not 0 <= value < n):
            raise ConfigError(f"{path}: {key} {value!r} outside 0..{n - 1} ({n} classes)")
    fps = float(entry.get("fps", 4))
    if fps <= 0:
        raise ConfigError(f"{path}: fps must be positive, got {fps}")
    dirs = tuple(feature_dirs or entry.get("feature_dirs", ["rgb_kinetics_resnet50"]))
    previous_action = entry.get("previous_action", False)
    if not isinstance(previous_action, bool):
        raise ConfigError(f"{path}: previous_action must be true or false, got {previous_action!r}")
    return DataInfo(
        name=name,
        root=root,
        class_names=class_names,
        ignore_index=ignore,
        background_index=background,
        fps=fps,
        feature_dirs=dirs,
        target_dir=entry.get("target_dir", "target_perframe"),
        train_sessions=tuple(entry["train_session_set"]),
        test_sessions=tuple(entry["test_session_set"]),
        encoder=entry.get("encoder"),
        previous_action=previous_action,
        val_sessions=tuple(entry.get("val_session_set", ())),
    )
