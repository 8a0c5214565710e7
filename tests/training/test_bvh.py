"""BVH motion capture (training/data/bvh.py) and the recordings it adds to the mocap dataset:
a hand-made rig whose forward kinematics is known exactly, bad files refused, and the real
Debian recordings (a boxer's fall, CMU's jumps and climb) read as a person would see them."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from runtime.errors import ConfigError
from runtime.pose_features import BODY_JOINTS
from training.data.bvh import body_joints, load_bvh, parse_bvh, world_joints
from training.data.mocap import (
    BVH_EXCERPTS,
    TEST_RANGES,
    THEN,
    TRAIN_RANGES,
    Library,
    MocapConfig,
    class_names,
    plan_video,
)
from training.data.mocap_files import BVH_FOLDER, ensure_mocap_files
from training.data.motions import facing

J = {name: i for i, name in enumerate(BODY_JOINTS)}

ARM = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Upper
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 5 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.5
1 2 3 0 0 0 0 0 0
1 2 3 90 0 0 0 90 0
"""


def test_forward_kinematics_of_a_hand_made_rig() -> None:
    bvh = parse_bvh(ARM)
    assert bvh.rig.names == ["Hips", "Upper"] and bvh.rig.parents == [-1, 0]
    assert bvh.frame_time == 0.5 and bvh.motion.shape == (2, 9)
    np.testing.assert_allclose(bvh.rig.end_sites[1], [0, 5, 0])
    pos, rot = world_joints(bvh)
    np.testing.assert_allclose(pos[0, 0], [1, 2, 3])
    np.testing.assert_allclose(pos[0, 1], [1, 12, 3])
    # Frame 1: the root turned 90° about z takes the child's +y offset to -x; the child's own
    # 90° about x turns its frame, not its position.
    np.testing.assert_allclose(pos[1, 1], [1 - 10, 2, 3], atol=1e-12)
    end = pos[1, 1] + rot[1, 1] @ bvh.rig.end_sites[1]
    # z then x: (0, 5, 0) → x by 90° → (0, 0, 5) → z by 90° keeps z → the end points along +z.
    np.testing.assert_allclose(end, [-9, 2, 8], atol=1e-12)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("no hierarchy here", "not a BVH file"),
        (ARM.replace("Frames: 2", "Frames: 3"), "motion values for 3 frames"),
        (ARM.replace("1 2 3 90 0 0 0 90 0", "1 2 3 90 0 0 0 90"), "motion values for 2 frames"),
        (ARM.replace("Xrotation Yrotation\n    End", "Xrotation Wrotation\n    End"), "channel"),
        (ARM.replace("Frame Time: 0.5", "Frame Time: x"), "malformed BVH"),
        (ARM.replace("OFFSET 0 10 0", "WEIGHT 0 10 0"), "unexpected 'WEIGHT'"),
    ],
)
def test_a_bad_bvh_is_refused_with_the_reason(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        world_joints(parse_bvh(text, "bad.bvh"))


def test_a_trailing_frame_beyond_the_count_is_dropped() -> None:
    bvh = parse_bvh(ARM + "5 5 5 0 0 0 0 0 0\n")
    assert bvh.motion.shape == (2, 9)


def test_a_wrong_package_is_refused(tmp_path: Path, gad_cache_dir: Path) -> None:
    deb = tmp_path / "other.deb"
    deb.write_bytes(b"!<arch>\nnot the package")
    cache = tmp_path / "cache"
    (cache / "mocap").mkdir(parents=True)
    # The pybullet clips are present (linked from the test cache): only the .deb is tried.
    real = ensure_mocap_files(gad_cache_dir)
    (cache / "mocap" / "pybullet-3.2.7").symlink_to(real / "pybullet-3.2.7")
    with pytest.raises(ConfigError, match=r"SHA-256 \w+ is not assimp-testmodels"):
        ensure_mocap_files(cache, deb=deb)
    assert not (cache / "mocap" / BVH_FOLDER).exists()


@pytest.fixture(scope="module")
def lib(gad_cache_dir: Path) -> Library:
    return Library.load(ensure_mocap_files(gad_cache_dir))


def heights(joints: np.ndarray, *names: str) -> np.ndarray:
    return joints[:, [J[n] for n in names], 1].mean(1)


def test_the_recordings_stand_on_the_floor_with_a_humans_shape(
    lib: Library, gad_cache_dir: Path
) -> None:
    skeleton = lib.skeleton
    folder = ensure_mocap_files(gad_cache_dir) / BVH_FOLDER
    for name in ("Boxing_Toes.bvh", "01_01.bvh", "01_03.bvh"):
        joints = body_joints(load_bvh(folder / name), skeleton)
        first = joints[:10]
        hips = heights(first, "left_hip", "right_hip")
        knees = heights(first, "left_knee", "right_knee")
        shoulders = heights(first, "left_shoulder", "right_shoulder")
        assert (knees < hips).all() and (hips < shoulders).all(), name
        assert (shoulders < first[:, J["nose"], 1]).all(), name
        assert 1.3 < first[:, J["nose"], 1].mean() < 1.75, name  # an adult's nose, metres
        assert 0.0 < joints[:, [J["left_ankle"], J["right_ankle"]], 1].min() < 0.1, name
        # Scaled to DeepMimic's leg, which the pose rows' body size is measured against.
        leg = np.linalg.norm(joints[:, J["left_hip"]] - joints[:, J["left_knee"]], axis=-1)
        leg += np.linalg.norm(joints[:, J["left_knee"]] - joints[:, J["left_ankle"]], axis=-1)
        np.testing.assert_allclose(leg, skeleton.bone("left_knee") + skeleton.bone("left_ankle"))
        assert abs(float(facing(joints[:1])[0])) < 0.35, name  # turned to face +x
        nose = joints[0, J["nose"]] - joints[0, [J["left_hip"], J["right_hip"]]].mean(0)
        assert nose[0] > 0.0, name  # the face is in front


def test_the_fall_goes_down_and_the_get_up_comes_back(lib: Library) -> None:
    fall = lib.clips["fall_boxing"]
    split, then = THEN["fall_boxing"]
    assert then == "get up"
    t = fall.times
    hips = heights(fall.joints, "left_hip", "right_hip")
    assert hips[t < 0.2].min() > 0.7  # standing when the fall starts
    down = (t > 2.0) & (t < split)
    assert hips[down].max() < 0.2  # on the floor for the rest of "fall"
    assert hips[-5:].min() > 0.8  # standing again at the end of "get up"
    # The climb ends about 0.8 m higher than it started (onto a platform) and the way down
    # the reverse.
    for up, dn in (("climb_up_a", "climb_down_a"), ("climb_up_b", "climb_down_b")):
        rise = heights(lib.clips[up].joints, "left_hip", "right_hip")
        drop = heights(lib.clips[dn].joints, "left_hip", "right_hip")
        assert 0.6 < rise[-1] - rise[0] < 1.0 and 0.6 < drop[0] - drop[-1] < 1.0


def test_a_video_plays_the_fall_then_the_get_up_without_a_seam(lib: Library) -> None:
    names = class_names()
    cfg = MocapConfig(seconds=(400.0, 400.0))
    seen_fall = seen_window = 0
    for seed in range(4):
        for split, ranges in (("train", TRAIN_RANGES), ("test", TEST_RANGES)):
            segments = plan_video(lib, cfg, ranges, split, np.random.default_rng(seed))
            for a, b in itertools.pairwise(segments):
                if a.source == "mocap:fall_boxing" and names[a.label] == "fall":
                    seen_fall += 1
                    assert names[b.label] == "get up" and b.source == a.source
                    assert b.start == a.end
                    edge = np.array([b.start - a.start])
                    np.testing.assert_allclose(b.motion(np.zeros(1)), a.motion(edge), atol=1e-9)
                if a.source == "mocap:boxing":
                    seen_window += 1
                    assert 0 < a.end - a.start <= cfg.action[1] + 1e-9
                    assert a.end - a.start < lib.clips["boxing"].duration
            if split == "train":
                held = {"mocap:climb_up_b", "mocap:climb_down_b"}
                assert not held & {s.source for s in segments}
    assert seen_fall and seen_window
    files = {file for file, *_ in BVH_EXCERPTS.values()}
    assert files == {"Boxing_Toes.bvh", "01_01.bvh", "01_03.bvh"}


def test_each_cut_of_the_jumps_holds_whole_jumps(lib: Library) -> None:
    """Every cut of CMU 01_01 starts and ends standing with both feet down and leaves the
    ground at least once; a source with cuts plays each of them."""
    names = lib.cuts["jumps_cmu"]
    assert len(names) == 6
    for name in names:
        joints = lib.clips[name].joints
        ankles = joints[:, [J["left_ankle"], J["right_ankle"]], 1].min(1)
        assert ankles[:5].max() < 0.12 and ankles[-5:].max() < 0.12, name
        assert ankles.max() > 0.2, name  # both feet off the ground
    rng = np.random.default_rng(0)
    assert {lib.pick("jumps_cmu", rng).name for _ in range(60)} == set(names)
    assert lib.pick("boxing", rng) is lib.clips["boxing"]
