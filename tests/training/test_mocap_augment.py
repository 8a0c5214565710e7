"""The mocap dataset's training augmentations (recipe v3): whole-person dropouts, waist-cut
framing and partial crops — what real detection does to a person that a clean synthetic
camera does not (docs/pose.md). They touch the training split only and come from their own
random stream, so the test split is the one the earlier recipes were measured on."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from runtime.pose_features import BODY_JOINTS
from training.data.camera import Camera, CameraRanges
from training.data.mocap import (
    TEST_RANGES,
    TRAIN_RANGES,
    Library,
    MocapConfig,
    class_names,
    write_mocap_dataset,
)
from training.data.mocap_files import ensure_mocap_files
from training.data.motions import Idle

J = {name: i for i, name in enumerate(BODY_JOINTS)}
LEGS = [J[f"{side}_{part}"] for side in ("left", "right") for part in ("knee", "ankle")]
ARMS = [J[f"{side}_{part}"] for side in ("left", "right") for part in ("shoulder", "elbow")]


@pytest.fixture(scope="module")
def files(gad_cache_dir: Path) -> Path:
    return ensure_mocap_files(gad_cache_dir)


@pytest.fixture(scope="module")
def lib(files: Path) -> Library:
    return Library.load(files)


def webcam(**overrides: object) -> Camera:
    """A camera at chest height 3 m away that shows the whole body (2.4 m of view)."""
    values: dict = dict(pitch=5.0, distance=3.0, aim_height=1.0, view_height=2.4, width=640,
                        height=480, mirror=False, noise=0.0, dropout=0.0)  # fmt: skip
    return Camera(**(values | overrides))


def test_a_waist_cut_puts_the_legs_out_of_the_picture(lib: Library) -> None:
    joints = Idle(lib.skeleton, 0.0, np.random.default_rng(0))(np.arange(8) / 4)
    camera = webcam()
    _, whole = camera.observe(joints, np.random.default_rng(1))
    assert whole[:, LEGS].min() > 0.85  # the whole body in view
    cut = CameraRanges(yaw_sectors=((0.0, 1.0),), pitch=(0.0, 1.0), speed=((1.0, 1.0),),
                       waist_cut=1.0, waist_height=(0.95, 0.95))  # fmt: skip
    framed = cut.draw_framing(camera, np.random.default_rng(2))
    assert framed.crop is not None and framed.crop[3] < camera.height  # the bottom moved up
    points, vis = framed.observe(joints, np.random.default_rng(1))
    assert (points[:, LEGS, 1] > framed.crop[3]).all()  # below the picture's new bottom ...
    assert vis[:, LEGS].max() <= 0.3  # ... and reported unsure, as BlazePose does
    assert vis[:, ARMS].min() > 0.85 and vis[:, J["nose"]].min() > 0.85


def test_a_side_cut_takes_one_side_of_the_body(lib: Library) -> None:
    joints = Idle(lib.skeleton, 0.0, np.random.default_rng(0))(np.arange(4) / 4)
    side = CameraRanges(yaw_sectors=((0.0, 1.0),), pitch=(0.0, 1.0), speed=((1.0, 1.0),),
                        side_cut=1.0, side_offset=(0.1, 0.1))  # fmt: skip
    hidden = set()
    for seed in range(8):  # either side, by the draw
        framed = side.draw_framing(webcam(), np.random.default_rng(seed))
        assert framed.crop is not None
        _, vis = framed.observe(joints, np.random.default_rng(1))
        out = vis.max(0) <= 0.3
        assert out.any() and not out.all() and not out[J["nose"]]
        hidden.add(frozenset(BODY_JOINTS[j].split("_")[0] for j in np.flatnonzero(out)))
    assert {frozenset({"left"}), frozenset({"right"})} <= hidden  # the person's one side


def test_person_dropouts_are_short_runs_at_the_drawn_rate() -> None:
    ranges = replace(TRAIN_RANGES, person_dropout=(0.05, 0.05), dropout_rows=(1, 3))
    lost = ranges.draw_person_dropouts(20_000, np.random.default_rng(0))
    edges = np.flatnonzero(np.diff(np.r_[0, lost.astype(int), 0]))
    runs = edges[1::2] - edges[::2]
    assert 0.05 < lost.mean() < 0.2 and runs.min() >= 1
    assert runs.max() <= 3  # runs stay apart: never a long gap
    assert not TEST_RANGES.draw_person_dropouts(1000, np.random.default_rng(0)).any()


def test_augmented_training_videos_and_an_unchanged_test_split(
    files: Path, tmp_path: Path, lib: Library
) -> None:
    config = MocapConfig(videos_train=10, videos_test=2, seconds=(30.0, 40.0))
    write_mocap_dataset(tmp_path / "plain", replace(config, augment=False), files, progress=False)
    write_mocap_dataset(tmp_path / "aug", config, files, progress=False)
    plain = json.loads((tmp_path / "plain" / "mocap.json").read_text())["sessions"]
    aug = json.loads((tmp_path / "aug" / "mocap.json").read_text())["sessions"]
    for name in ("test_0000", "test_0001"):  # the held-out split: byte for byte the same
        for folder in ("features", "target_perframe"):
            a = (tmp_path / "plain" / folder / f"{name}.npy").read_bytes()
            assert a == (tmp_path / "aug" / folder / f"{name}.npy").read_bytes()
        assert aug[name]["lost_rows"] == [] and aug[name]["camera"]["crop"] is None
    train = [name for name in aug if name.startswith("train")]
    lost_labels = []
    for name in train:
        # The same videos: the same segments and labels ...
        assert aug[name]["segments"] == plain[name]["segments"]
        labels = np.load(tmp_path / "aug" / "target_perframe" / f"{name}.npy").argmax(1)
        plain_labels = np.load(tmp_path / "plain" / "target_perframe" / f"{name}.npy")
        assert (labels == plain_labels.argmax(1)).all()
        # ... with the person lost for short runs: "nobody" rows, the labels kept.
        rows = np.array(aug[name]["lost_rows"], dtype=int)
        features = np.load(tmp_path / "aug" / "features" / f"{name}.npy")
        assert (features[rows, -1] < 0.5).all() and not features[rows, :-1].any()
        lost_labels += labels[rows].tolist()
    background, ignore = 0, len(class_names()) - 1
    assert any(label not in (background, ignore) for label in lost_labels)  # mid-action
    cut = [aug[name]["camera"]["crop"] for name in train if aug[name]["camera"]["crop"]]
    assert 0 < len(cut) < len(train)  # about a third of training videos are cut
    assert all(plain[name]["camera"]["crop"] is None for name in train)


def test_gad_data_mocap_no_augment_writes_the_plain_dataset(
    files: Path, gad_cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`gad data mocap --no-augment` is MocapConfig(augment=False): the same files, byte for
    byte; without the flag the training split is augmented."""
    from gad.cli import main

    monkeypatch.setenv("GAD_CACHE_DIR", str(gad_cache_dir))  # where `files` already are
    small = ["--train-videos", "6", "--test-videos", "1", "--seconds", "30", "40"]
    assert main(["data", "mocap", "--out", str(tmp_path / "cli"), *small, "--no-augment",
                 "--no-progress"]) == 0  # fmt: skip
    assert main(["data", "mocap", "--out", str(tmp_path / "aug"), *small, "--no-progress"]) == 0
    config = MocapConfig(videos_train=6, videos_test=1, seconds=(30.0, 40.0), augment=False)
    write_mocap_dataset(tmp_path / "api", config, files, progress=False)
    cli = json.loads((tmp_path / "cli" / "mocap.json").read_text())
    aug = json.loads((tmp_path / "aug" / "mocap.json").read_text())
    assert cli["config"]["augment"] is False and aug["config"]["augment"] is True
    names = sorted(cli["sessions"])
    assert len(names) == 7
    for name in names:
        a = (tmp_path / "cli" / "features" / f"{name}.npy").read_bytes()
        assert a == (tmp_path / "api" / "features" / f"{name}.npy").read_bytes()
        assert cli["sessions"][name]["lost_rows"] == []
        assert cli["sessions"][name]["camera"]["crop"] is None
    augmented = [aug["sessions"][n] for n in names if n.startswith("train")]
    assert any(s["lost_rows"] or s["camera"]["crop"] for s in augmented)
