"""training/teach.py and `gad teach train`: a new package version from a few examples."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gad.cli import main
from runtime.manifest import read_package
from runtime.oad_layout import data_info_entry, one_hot, write_data_info
from runtime.pose_features import FEATURE_DIM, MIRROR_INDEX, NUM_JOINTS
from tests.conftest import CLASS_NAMES
from training.teach import _hold_out, augment_rows, load_examples, next_version

NEW = "wave hello"


def write_dataset(
    root: Path, name: str, classes: list[str], videos: dict[str, list[int]], split: dict, dim: int
) -> None:
    """`videos`: session -> per-row class indices; rows are random but class-dependent."""
    (root / "features").mkdir(parents=True, exist_ok=True)
    (root / "target_perframe").mkdir(parents=True, exist_ok=True)
    gen = np.random.default_rng(0)
    for session, labels in videos.items():
        y = np.array(labels)
        rows = gen.standard_normal((len(y), dim)).astype(np.float32) * 0.3 + y[:, None]
        np.save(root / "features" / f"{session}.npy", rows)
        np.save(root / "target_perframe" / f"{session}.npy", one_hot(y, len(classes)))
    entry = data_info_entry(
        class_names=classes, fps=4.0, feature_dir="features", encoder=None, **split
    )
    write_data_info(root, name, entry)


def tiny_mocap(root: Path, dim: int) -> Path:
    gen = np.random.default_rng(1)
    videos = {
        f"v{i}": np.repeat(gen.integers(0, len(CLASS_NAMES), 6), 5).tolist() for i in range(5)
    }
    split = {"train": ["v0", "v1", "v2"], "test": ["v3", "v4"]}
    write_dataset(root, "TINY", list(CLASS_NAMES), videos, split, dim)
    return root


def tiny_examples(root: Path, dim: int, count: int = 3) -> Path:
    labels = [0] * 3 + [1] * 8 + [0] * 2  # background, the new label, background
    videos = {f"{i:012x}": labels for i in range(count)}
    split = {"train": list(videos), "test": []}
    write_dataset(root, "examples", ["background", NEW], videos, split, dim)
    return root


@pytest.fixture
def taught_root(tiny_package: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the tiny package's root (run/checkpoint, models/NAME/1): (root, version)."""
    _, folder = tiny_package
    root = tmp_path / "root"
    shutil.copytree(folder.parents[2], root)
    return root, root / folder.relative_to(folder.parents[2])


def test_teach_train_writes_a_verified_new_version(
    taught_root: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, base = taught_root
    package = read_package(base)
    mocap = tiny_mocap(tmp_path / "mocap", package.feature_dim)
    examples = tiny_examples(tmp_path / "examples", package.feature_dim)
    out = base.parent
    code = main([
        "teach", "train", "--examples", str(examples), "--base", str(base), "--out", str(out),
        "--mocap", str(mocap), "--steps", "3", "--batch-size", "4", "--json",
    ])  # fmt: skip
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0, lines[-1]
    assert {line["stage"] for line in lines[:-1]} >= {"prepare", "train", "export", "evaluate"}
    assert all(0 <= line["progress"] <= 1 for line in lines[:-1])
    result = lines[-1]["result"]
    assert result["version"] == "2" and result["new_classes"] == [NEW]
    assert len(result["examples"]["held_out"]) == 1 and len(result["examples"]["train"]) == 2
    assert set(result["held_out_accuracy"]) == {"background", NEW}
    assert set(result["old_map"]) == {"before", "after"}

    new = read_package(out / "2")  # every file and digest checked
    assert new.classes == (*package.classes, NEW)
    assert new.window == package.window and new.info.verify is not None
    teach = new.info.extra["teach"]
    assert teach["base"] == f"{package.name}/{package.version}"
    assert teach["examples"]["used"] == 3 and teach["new_classes"] == [NEW]
    assert new.metrics is not None and NEW in new.metrics["examples_frame_accuracy"]
    assert (out / "2" / "checkpoint" / "checkpoint.json").is_file()
    assert not list(out.parent.glob(".*teach*"))  # the work folder is gone
    # The new version is a base in turn: its kept checkpoint is found and grows no head.
    code = main([
        "teach", "train", "--examples", str(examples), "--base", str(out / "2"),
        "--out", str(out), "--mocap", str(mocap), "--steps", "2", "--batch-size", "4",
    ])  # fmt: skip
    assert code == 0
    assert read_package(out / "3").classes == new.classes


def test_teach_train_json_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([
        "teach", "train", "--examples", str(tmp_path), "--base", str(tmp_path / "none"),
        "--out", str(tmp_path / "models"), "--mocap", str(tmp_path), "--json",
    ])  # fmt: skip
    last = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert code == 2 and last["stage"] == "prepare" and "does not exist" in last["error"]


def test_examples_split_by_example_and_classes(tmp_path: Path) -> None:
    examples = tiny_examples(tmp_path / "ex", 4, count=4)
    taught, classes = load_examples(examples, ("background", "walk"), "background", seed=0)
    assert classes == ("background", "walk", NEW)
    assert len(taught.held_out) == 1 and len(taught.train) == 3
    assert set(taught.train[0].labels.tolist()) == {0, 2}  # background → 0, new → 2
    one, _ = load_examples(tiny_examples(tmp_path / "one", 4, count=1), ("background", "walk"),
                           "background", seed=0)  # fmt: skip
    assert not one.held_out and "none held out" in one.notes[0]


def test_hold_out_keeps_every_label_trained() -> None:
    labels = {"a": ["x"], "b": ["x", "y"], "c": ["y"], "d": ["x"]}
    held, notes = _hold_out(labels, {"x", "y"}, seed=0)
    assert not notes and held
    for label in ("x", "y"):
        having = [s for s, ls in labels.items() if label in ls]
        assert any(s in held for s in having) and any(s not in held for s in having)


def test_augment_rows_as_the_mocap_cameras() -> None:
    gen = np.random.default_rng(0)
    rows = np.zeros((20, FEATURE_DIM), np.float32)
    rows[:, : 2 * NUM_JOINTS] = gen.standard_normal((20, 2 * NUM_JOINTS))
    rows[:, 2 * NUM_JOINTS : -1] = 0.95
    rows[:, -1] = 0.9
    rows[5, :] = 0.0  # nobody in view
    rows[5, -1] = 0.1
    labels = np.arange(20)
    for seed in range(20):
        out, out_labels = augment_rows(rows, labels, np.random.default_rng(seed))
        assert out.shape[1] == FEATURE_DIM and len(out) == len(out_labels)
        assert 15 <= len(out) <= 26  # playback speed 0.8-1.25x
        nobody = out[:, -1] < 0.5
        assert (out[nobody, :-1] == 0).all()
        assert ((out[:, 2 * NUM_JOINTS : -1] >= 0) & (out[:, 2 * NUM_JOINTS : -1] <= 1)).all()
    assert MIRROR_INDEX[1] == 2  # left shoulder ↔ right shoulder: what mirroring swaps


def test_next_version(tmp_path: Path) -> None:
    assert next_version(tmp_path / "none") == "1"
    for name in ("1", "3", "latest", ".2.tmp"):
        (tmp_path / name).mkdir()
    assert next_version(tmp_path) == "4"
    assert next_version(tmp_path, "7") == "8"  # a tenant's folder after the shared version 7
    assert next_version(tmp_path / "none", "1") == "2" and next_version(tmp_path, "x") == "4"


def test_grow_keeps_every_old_logit() -> None:
    import torch

    from tests.model.helpers import NAMES, random_batch, tiny_model, train_steps
    from training.teach import grow

    base = tiny_model("gad")
    train_steps(base, steps=2)
    grown = grow(base.eval(), (*NAMES, NEW), "tiny", seed=0).eval()
    features, _, _ = random_batch()
    with torch.no_grad():
        old, new = base.class_logits(features), grown.class_logits(features)
    assert new.shape[1] == len(NAMES) + 1
    torch.testing.assert_close(new[:, : len(NAMES)], old, rtol=0, atol=1e-6)
