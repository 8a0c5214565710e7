"""The mocap pose dataset: DeepMimic's real clips through FK, the camera, and the writer.

The clips come out of the real pybullet wheel (fetched with pip into the test cache on first
use, as `gad data mocap` does)."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gad.cli import main
from runtime.errors import ConfigError
from runtime.pose_features import BODY_JOINTS, MIRROR_INDEX, pose_features_batch
from training.data.camera import Camera
from training.data.kinematics import PARENT, forward_kinematics, load_clip
from training.data.mocap import (
    CLASSES,
    TEST_ONLY_CLIPS,
    TEST_RANGES,
    TRAIN_RANGES,
    Library,
    MocapConfig,
    class_names,
    plan_video,
    write_mocap_dataset,
)
from training.data.mocap_files import ensure_mocap_files
from training.data.motions import ClipMotion, Gesture, Idle, facing
from training.data_info import load_data_info
from training.dataset import load_split

J = {name: i for i, name in enumerate(BODY_JOINTS)}
SMALL = MocapConfig(videos_train=3, videos_test=2, seconds=(25.0, 35.0))


@pytest.fixture(scope="session")
def files(gad_cache_dir: Path) -> Path:
    return ensure_mocap_files(gad_cache_dir)


@pytest.fixture(scope="session")
def lib(files: Path) -> Library:
    return Library.load(files)


def bone_lengths(joints: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame length of each limb bone between two BODY_JOINTS."""
    bones = {}
    for side in ("left", "right"):
        for a, b in (("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"), ("knee", "ankle")):
            pa, pb = joints[:, J[f"{side}_{a}"]], joints[:, J[f"{side}_{b}"]]
            bones[f"{side}_{a}-{b}"] = np.linalg.norm(pa - pb, axis=-1)
    return bones


def test_walk_has_a_human_shape_on_the_ground(lib: Library) -> None:
    joints = lib.clips["walk"].joints
    y = joints[..., 1]
    hips = y[:, [J["left_hip"], J["right_hip"]]].mean(1)
    knees = y[:, [J["left_knee"], J["right_knee"]]].mean(1)
    ankles = y[:, [J["left_ankle"], J["right_ankle"]]]
    shoulders = y[:, [J["left_shoulder"], J["right_shoulder"]]].mean(1)
    assert (ankles.max(1) < knees).all() and (knees < hips).all()
    assert (hips < shoulders).all() and (shoulders < y[:, J["nose"]]).all()
    assert 0.0 < ankles.min() < 0.15  # a foot on the ground (ankle joint above the sole)
    assert 1.3 < y[:, J["nose"]].mean() < 1.7  # an adult's nose height, in metres
    # The walker goes where it faces (+x in the clip): about 1.2 m per two-step cycle.
    travel = joints[-1, J["left_hip"]] - joints[0, J["left_hip"]]
    assert 1.0 < travel[0] < 1.5 and abs(travel[2]) < 0.3
    # The feet take turns in front.
    ahead = joints[:, J["left_ankle"], 0] - joints[:, J["right_ankle"], 0]
    assert ahead.max() > 0.3 and ahead.min() < -0.3


@pytest.mark.parametrize("name", ["walk", "run", "kick", "cartwheel", "getup_faceup"])
def test_bones_keep_their_length_and_sides_match(lib: Library, name: str) -> None:
    joints = lib.clips[name].joints
    bones = bone_lengths(joints)
    for bone, lengths in bones.items():
        np.testing.assert_allclose(lengths, lengths[0], atol=1e-9, err_msg=bone)
    for bone in ("shoulder-elbow", "elbow-wrist", "hip-knee", "knee-ankle"):
        assert bones[f"left_{bone}"][0] == pytest.approx(bones[f"right_{bone}"][0])
    hip_width = np.linalg.norm(joints[:, J["left_hip"]] - joints[:, J["right_hip"]], axis=-1)
    np.testing.assert_allclose(hip_width, 0.17, atol=1e-3)


def test_left_is_the_persons_left(lib: Library) -> None:
    """Facing +x with y up, the person's right is +z: so is the humanoid's right side."""
    joints = lib.clips["walk"].joints[:1]
    assert abs(float(facing(joints)[0])) < 0.2
    turned = ClipMotion(lib.clips["walk"], 1.0, 0.7)(np.zeros(1))
    assert float(facing(turned)[0]) == pytest.approx(0.7)
    nose = turned[0, J["nose"]] - turned[0, [J["left_hip"], J["right_hip"]]].mean(0)
    assert math.atan2(-nose[2], nose[0]) == pytest.approx(0.7, abs=0.25)  # the face turned too
    for part in ("hip", "shoulder"):
        assert joints[0, J[f"right_{part}"], 2] > 0.05 > -0.05 > joints[0, J[f"left_{part}"], 2]
    assert joints[0, J["nose"], 0] > joints[0, J["left_shoulder"], 0]  # the face is in front


def test_a_bad_clip_or_wheel_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "humanoid3d_bad.txt"
    bad.write_text(json.dumps({"Loop": "none", "Frames": [[0.1] * 43, [0.0] * 43]}))
    with pytest.raises(ConfigError, match=r"frames have shape \[2, 43\], expected \[>=2, 44\]"):
        load_clip(bad)
    wheel = tmp_path / "not-pybullet.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg/__init__.py", "")
    with pytest.raises(ConfigError, match="is it a pybullet wheel"):
        ensure_mocap_files(tmp_path / "cache", wheel=wheel)
    assert not (tmp_path / "cache" / "mocap" / "pybullet-3.2.7").exists()


def camera(**kw: object) -> Camera:
    base = dict(pitch=5.0, distance=3.5, aim_height=1.0, view_height=2.2, width=640, height=480)
    base |= dict(mirror=False, noise=0.0, dropout=0.0)
    return Camera(**(base | kw))  # type: ignore[arg-type]


def features(cam: Camera, joints: np.ndarray) -> np.ndarray:
    points, vis = cam.observe(joints, np.random.default_rng(0))
    return pose_features_batch(points, vis, np.ones(len(joints)))


def test_projection_is_invariant_to_image_size_and_mirrors_left_and_right(lib: Library) -> None:
    joints = ClipMotion(lib.clips["walk"], 1.0, 0.0)(np.arange(8) / 4)
    base = features(camera(), joints)
    bigger = features(camera(width=1280, height=960), joints)  # same view, twice the pixels
    np.testing.assert_allclose(bigger, base, atol=1e-4)
    mirrored = features(camera(mirror=True), joints)
    xy, mxy = base[:, :26].reshape(-1, 13, 2), mirrored[:, :26].reshape(-1, 13, 2)
    np.testing.assert_allclose(mxy[:, list(MIRROR_INDEX)], xy * [-1.0, 1.0], atol=1e-4)
    # Facing the camera, the person's left shoulder is on the image's right...
    points, _ = camera().project(joints)
    assert (points[:, J["left_shoulder"], 0] > points[:, J["right_shoulder"], 0]).all()
    # ... seen from the side the shoulders overlap, and the far one is reported less visible.
    side = ClipMotion(lib.clips["walk"], 1.0, math.pi / 2)(np.arange(8) / 4)
    points, vis = camera().observe(side, np.random.default_rng(0))
    width = np.abs(points[:, J["left_shoulder"], 0] - points[:, J["right_shoulder"], 0])
    torso = np.abs(points[:, J["left_shoulder"], 1] - points[:, J["left_hip"], 1])
    assert (width < 0.35 * torso).all()
    # Turned a quarter to the left of facing the camera, the right side is the near one.
    _, depth = camera().project(side)
    assert (depth[:, J["left_shoulder"]] > depth[:, J["right_shoulder"]] + 0.2).all()
    assert vis[:, J["left_shoulder"]].mean() < 0.8 < vis[:, J["right_shoulder"]].mean()


def test_joints_out_of_the_picture_are_reported_unsure(lib: Library) -> None:
    """A close webcam framing the chest cuts off the legs: BlazePose still places them, with
    low visibility."""
    joints = Idle(lib.skeleton, 0.0, np.random.default_rng(0))(np.arange(4) / 4)
    cam = camera(distance=1.2, aim_height=1.35, view_height=0.9)
    points, vis = cam.observe(joints, np.random.default_rng(1))
    assert (points[:, J["left_ankle"], 1] > cam.height).all()
    assert vis[:, J["left_ankle"]].max() <= 0.3 < vis[:, J["nose"]].min()


def test_gestures_do_what_they_are_named_for(lib: Library) -> None:
    rng = np.random.default_rng(0)
    sk = lib.skeleton
    raise_ = Gesture(sk, "raise right arm", 4.0, 1.0, 0.0, rng)(np.array([0.0, 2.0]))
    assert raise_[1, J["right_wrist"], 1] > raise_[1, J["nose"], 1] + 0.3
    assert raise_[1, J["left_wrist"], 1] < raise_[1, J["left_hip"], 1] + 0.2  # other arm down
    assert raise_[0, J["right_wrist"], 1] < raise_[0, J["right_shoulder"], 1]  # starts at rest
    squat = Gesture(sk, "squat", 4.0, 1.0, 0.0, rng)(np.array([0.0, 0.9]))
    hips = squat[:, [J["left_hip"], J["right_hip"]], 1].mean(1)
    assert hips[1] < hips[0] - 0.15
    assert squat[1, [J["left_ankle"], J["right_ankle"]], 1].max() < 0.1  # feet stay down
    assert squat[1, J["left_knee"], 0] > squat[1, J["left_hip"], 0] + 0.15  # knees forward
    clap = Gesture(sk, "clap", 4.0, 1.0, 0.0, rng)(np.array([2.5, 2.5 + 1 / 3.2]))
    gap = np.linalg.norm(clap[:, J["left_wrist"]] - clap[:, J["right_wrist"]], axis=-1)
    assert gap[0] < 0.12 < 0.3 < gap[1]  # together, then apart half a clap later
    assert (clap[:, J["left_wrist"], 0] > clap[:, J["left_shoulder"], 0] + 0.15).all()
    for bone, lengths in bone_lengths(clap).items():
        np.testing.assert_allclose(lengths, bone_lengths(raise_)[bone][0], atol=1e-6)


def test_looped_clips_carry_on_and_one_shots_hold(lib: Library) -> None:
    walk = lib.clips["walk"]
    motion = ClipMotion(walk, 1.0, 0.0)
    t = np.array([0.0, walk.duration - 1e-6, walk.duration, 2.5 * walk.duration])
    joints = motion(t)
    # The clip's last frame is nearly its first one again: the next cycle starts there.
    assert np.abs(joints[2] - joints[1]).max() < 0.12
    assert np.ptp(bone_lengths(joints)["left_hip-knee"]) < 2e-3  # frames mixed linearly
    kick = lib.clips["kick"]
    late = ClipMotion(kick, 1.0, 0.0)(np.array([kick.duration, kick.duration + 3]))
    np.testing.assert_allclose(late[0], late[1], atol=1e-9)


def test_rest_pose_forward_kinematics_hangs_the_limbs_down(lib: Library) -> None:
    eye = np.eye(3)[None]
    joints = forward_kinematics(lib.skeleton, np.array([[0.0, 1.0, 0.0]]), eye, {})[0]
    for side in ("left", "right"):
        arm = joints[[J[f"{side}_shoulder"], J[f"{side}_elbow"], J[f"{side}_wrist"]]]
        np.testing.assert_allclose(arm[:, [0, 2]], arm[:1, [0, 2]].repeat(3, 0), atol=1e-9)
        assert arm[0, 1] > arm[1, 1] > arm[2, 1]
    assert set(PARENT) >= {n for n in BODY_JOINTS if n != "nose"}


def test_splits_never_share_headings_pitches_speeds_or_held_out_clips(lib: Library) -> None:
    rng = np.random.default_rng(0)

    def in_test_yaw(deg: float) -> bool:
        return any(lo <= deg % 360 <= hi for lo, hi in TEST_RANGES.yaw_sectors)

    train_yaws = [math.degrees(TRAIN_RANGES.draw_yaw(rng)) for _ in range(2000)]
    test_yaws = [math.degrees(TEST_RANGES.draw_yaw(rng)) for _ in range(500)]
    assert not any(in_test_yaw(y) for y in train_yaws) and all(map(in_test_yaw, test_yaws))
    assert max(np.ptp(train_yaws), 360 - 80) > 300  # train sees all around otherwise
    assert TRAIN_RANGES.pitch[1] <= TEST_RANGES.pitch[0]
    speeds = [TEST_RANGES.draw_speed(rng) for _ in range(500)]
    lo, hi = TRAIN_RANGES.speed[0]
    assert not any(lo < s < hi for s in speeds)
    train = {
        s.source for _ in range(150) for s in plan_video(lib, SMALL, TRAIN_RANGES, "train", rng)
    }
    test = {s.source for _ in range(60) for s in plan_video(lib, SMALL, TEST_RANGES, "test", rng)}
    held = {f"mocap:{c}" for c in TEST_ONLY_CLIPS}
    assert not train & held and held <= test
    every = {s for srcs in CLASSES.values() for s in srcs}
    assert train - {"idle", "nobody"} | held == every  # every other source is trained on


def test_dataset_loads_and_rows_carry_their_segments_labels(
    lib: Library, files: Path, tmp_path: Path
) -> None:
    summary = write_mocap_dataset(tmp_path, SMALL, files, progress=False)
    info = load_data_info(tmp_path)
    assert info.class_names == tuple(class_names()) and info.fps == 4.0
    assert info.encoder is not None and info.encoder["kind"] == "pose-blazepose"
    assert info.encoder["feature_dim"] == 40 and info.previous_action is False
    assert info.model_class_names[0] == "background" and "ambiguous" not in info.model_class_names
    videos = load_split(info, "train") + load_split(info, "test")
    assert len(videos) == 5 and sum(len(v) for v in videos) == summary["frames"]
    details = json.loads((tmp_path / "mocap.json").read_text())
    names = class_names()
    seen = set()
    for video in videos:
        assert video.features.shape == (len(video), 40) and np.isfinite(video.features).all()
        times = np.arange(len(video)) / info.fps
        session = details["sessions"][video.session]
        lost = np.zeros(len(video), bool)  # whole-person dropouts (training augmentation)
        lost[session["lost_rows"]] = True
        assert (video.features[lost, 39] < 0.5).all() and not video.features[lost, :39].any()
        for start, end, source in session["segments"]:
            rows = (times >= start) & (times < end)
            labels = video.labels[rows]
            if source in ("idle", "nobody"):
                assert (labels == 0).all()
                rows &= ~lost
                present = video.features[rows, 39]
                assert (present < 0.5).all() if source == "nobody" else (present > 0.5).all()
                if source == "nobody":
                    assert not video.features[rows, :39].any()
                continue
            label = next(c for c, srcs in CLASSES.items() if source in srcs)
            core = labels[labels != info.ignore_index]
            assert len(core) and (core == names.index(label)).all(), (source, labels)
            seen.add(label)
    assert len(seen) >= 6


def test_same_seed_same_files_and_the_command_writes_it(
    files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = MocapConfig(videos_train=2, videos_test=1, seconds=(10.0, 12.0))
    write_mocap_dataset(tmp_path / "a", tiny, files, progress=False)
    monkeypatch.setenv("GAD_CACHE_DIR", str(files.parent.parent))
    argv = ["data", "mocap", "--out", str(tmp_path / "b"), "--train-videos", "2"]
    argv += ["--test-videos", "1", "--seconds", "10", "12", "--no-progress"]
    assert main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    for name in ("features/train_0001.npy", "target_perframe/test_0000.npy", "data_info.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
