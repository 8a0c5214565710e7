from __future__ import annotations

import numpy as np
import pytest

from runtime.pose_features import (
    BLAZEPOSE_INDEX,
    BODY_JOINTS,
    FEATURE_DIM,
    MIRROR_INDEX,
    NUM_JOINTS,
    PoseError,
    pose_features,
    pose_features_batch,
)

# A standing person in pixels (x right, y down), BODY_JOINTS order; "left" is the person's left,
# which is image right for a person facing the camera.
STANDING = np.array(
    [
        [320, 100],  # nose
        [350, 150],  # left_shoulder
        [290, 150],  # right_shoulder
        [360, 210],  # left_elbow
        [280, 210],  # right_elbow
        [365, 265],  # left_wrist
        [275, 265],  # right_wrist
        [340, 270],  # left_hip
        [300, 270],  # right_hip
        [342, 350],  # left_knee
        [298, 350],  # right_knee
        [344, 430],  # left_ankle
        [296, 430],  # right_ankle
    ],
    dtype=np.float64,
)
VISIBLE = np.linspace(0.3, 1.0, NUM_JOINTS)


def test_layout_matches_the_contract() -> None:
    assert FEATURE_DIM == 40 and len(BODY_JOINTS) == len(BLAZEPOSE_INDEX) == NUM_JOINTS == 13
    row = pose_features(STANDING, VISIBLE, True)
    assert row.shape == (FEATURE_DIM,) and row.dtype == np.float32
    xy = row[:26].reshape(13, 2)
    # Centred on the hip midpoint, torso length (shoulder mid → hip mid = 120 px) is the unit.
    np.testing.assert_allclose((xy[7] + xy[8]) / 2, 0.0, atol=1e-6)
    np.testing.assert_allclose((xy[1] + xy[2]) / 2, (0.0, -1.0), atol=1e-6)
    np.testing.assert_allclose(xy[0], (0.0, -170 / 120), atol=1e-6)
    np.testing.assert_allclose(row[26:39], VISIBLE, atol=1e-6)
    assert row[39] == 1.0


def test_translation_and_uniform_scale_do_not_change_the_row() -> None:
    base = pose_features(STANDING, VISIBLE, 0.9)
    moved = pose_features(STANDING * 0.37 + np.array([-55.0, 812.0]), VISIBLE, 0.9)
    np.testing.assert_allclose(moved, base, atol=1e-5)
    # But a non-uniform scale (x by width, y by height) changes the geometry.
    squashed = pose_features(STANDING / np.array([640.0, 480.0]), VISIBLE, 0.9)
    assert np.abs(squashed[:26] - base[:26]).max() > 0.05


def test_mirroring_swaps_left_and_right_and_negates_x() -> None:
    assert [BODY_JOINTS[j] for j in MIRROR_INDEX[1:3]] == ["right_shoulder", "left_shoulder"]
    assert MIRROR_INDEX[0] == 0 and tuple(MIRROR_INDEX[j] for j in MIRROR_INDEX) == tuple(
        range(NUM_JOINTS)
    )
    flipped = STANDING.copy()
    flipped[:, 0] = 640 - flipped[:, 0]
    flipped = flipped[list(MIRROR_INDEX)]
    base = pose_features(STANDING, VISIBLE, 1.0)
    mirrored = pose_features(flipped, VISIBLE[list(MIRROR_INDEX)], 1.0)
    xy, mxy = base[:26].reshape(13, 2), mirrored[:26].reshape(13, 2)
    np.testing.assert_allclose(mxy[list(MIRROR_INDEX)], xy * np.array([-1.0, 1.0]), atol=1e-5)
    np.testing.assert_allclose(mirrored[26:39][list(MIRROR_INDEX)], VISIBLE, atol=1e-6)
    # The original stands asymmetrically (left wrist further out), so mirroring is visible.
    assert not np.allclose(mirrored, base, atol=1e-3)


def test_no_person_gives_zero_points_and_visibility_and_keeps_present() -> None:
    nan_points = np.full((NUM_JOINTS, 2), np.nan)
    row = pose_features(nan_points, np.ones(NUM_JOINTS), 0.2)
    np.testing.assert_array_equal(row[:39], 0.0)
    assert row[39] == pytest.approx(0.2)
    assert pose_features(STANDING, VISIBLE, False)[:39].any() == np.False_


def test_batch_matches_single_frames_and_mixes_person_and_nobody() -> None:
    rng = np.random.default_rng(0)
    points = STANDING[None] + rng.normal(0, 5, (4, NUM_JOINTS, 2))
    vis = rng.uniform(0, 1, (4, NUM_JOINTS))
    present = np.array([1.0, 0.1, 0.7, 0.5])
    rows = pose_features_batch(points, vis, present)
    assert rows.shape == (4, FEATURE_DIM) and rows.dtype == np.float32
    for i in range(4):
        np.testing.assert_allclose(rows[i], pose_features(points[i], vis[i], present[i]))
    np.testing.assert_array_equal(rows[1, :39], 0.0)
    assert pose_features_batch(np.zeros((0, 13, 2)), np.zeros((0, 13)), np.zeros(0)).shape == (
        0,
        FEATURE_DIM,
    )


def test_a_collapsed_torso_is_floored_so_rows_stay_bounded() -> None:
    lying = STANDING.copy()
    lying[[1, 2], 1] = lying[[7, 8], 1]  # shoulders at hip height: zero torso length
    lying[[1, 2], 0] = lying[[7, 8], 0]
    row = pose_features(lying, VISIBLE, 1.0)
    assert np.isfinite(row).all() and np.abs(row[:26]).max() <= 6.0 + 1e-5
    one_point = pose_features(np.full((13, 2), 7.0), VISIBLE, 1.0)
    np.testing.assert_array_equal(one_point[:26], 0.0)


@pytest.mark.parametrize(
    ("points", "vis", "message"),
    [
        (np.zeros((17, 2)), np.ones(13), r"points have shape \(17, 2\), expected \(13, 2\)"),
        (np.zeros((13, 3)), np.ones(13), r"expected \(13, 2\)"),
        (np.zeros((13, 2)), np.ones(12), r"visibility has shape \(12,\), expected \(13,\)"),
    ],
)
def test_bad_shapes_are_refused_with_the_shapes(
    points: np.ndarray, vis: np.ndarray, message: str
) -> None:
    with pytest.raises(PoseError, match=message):
        pose_features(points, vis, 1.0)


def test_bad_batches_are_refused() -> None:
    with pytest.raises(PoseError, match=r"expected \(N, 13, 2\)"):
        pose_features_batch(np.zeros((13, 2)), np.zeros(13), np.zeros(1))
    with pytest.raises(PoseError, match=r"present has shape \(3,\), expected \(2,\)"):
        pose_features_batch(np.zeros((2, 13, 2)), np.zeros((2, 13)), np.zeros(3))
    points = np.zeros((2, 13, 2))
    points[1, 4] = np.inf
    with pytest.raises(PoseError, match="frame 1 has a person but NaN or infinite points"):
        pose_features_batch(points, np.ones((2, 13)), np.ones(2))
    assert isinstance(PoseError("x"), ValueError)
