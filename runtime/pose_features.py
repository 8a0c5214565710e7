"""Body-pose keypoints → the per-frame feature row of the `pose-blazepose` encoder kind.

One torch-free numpy definition shared by the pose estimator (runtime, camera frames) and the
motion-capture training data (training/data/mocap.py), so a live person and a synthetic one
give rows on the same scale. A row is stateless per frame (no velocities): the model reads a
window of consecutive rows, so motion is visible to it, and a stateless encoder resumes
exactly and batches across streams.

    row  = pose_features(points, visibility, present)          # [13, 2], [13], p → [40]
    rows = pose_features_batch(points, visibility, present)    # [N, 13, 2], [N, 13], [N] → [N, 40]

Layout of a row (FEATURE_DIM = 40):
  [0:26]   the 13 BODY_JOINTS as (x, y) pairs, centred on the hip midpoint and divided by the
           body scale (below); x right, y down, as in the image.
  [26:39]  visibility of each joint, clipped to [0, 1].
  [39]     person-present probability.
A frame with no person (present < 0.5) keeps its present value and has all-zero points and
visibility: "nobody" is a valid frame, not an error, and its points may be anything (NaN too).

Body scale: the torso length (hip midpoint → shoulder midpoint). A torso seen end-on (a person
lying towards the camera, a crawl seen from the front) is short, so it is floored at 1/6 of the
pose's larger bounding-box side (a standing adult is about 3.3 torsos tall) and at 1e-6. The
floor is itself scale- and translation-invariant, and it bounds every coordinate to ±6.

Points must be in image coordinates of one scale on both axes (pixels, or x and y divided by
the same number): dividing x by the width and y by the height would squash the geometry.
"Left" is the person's left, as in BlazePose; MIRROR_INDEX swaps left and right joints, which a
horizontal flip must do along with negating x.
"""

from __future__ import annotations

import numpy as np

from runtime.errors import GADError

BODY_JOINTS: tuple[str, ...] = (
    "nose",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
# Index of each BODY_JOINT among BlazePose's 33 landmarks.
BLAZEPOSE_INDEX: tuple[int, ...] = (0, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
NUM_JOINTS = len(BODY_JOINTS)
FEATURE_DIM = NUM_JOINTS * 2 + NUM_JOINTS + 1
# MIRROR_INDEX[j] is the joint that j becomes in a horizontally flipped image.
MIRROR_INDEX: tuple[int, ...] = tuple(
    BODY_JOINTS.index(name.replace("left_", "@").replace("right_", "left_").replace("@", "right_"))
    for name in BODY_JOINTS
)
PRESENT_THRESHOLD = 0.5
SCALE_FLOOR_OF_EXTENT = 1.0 / 6.0
MIN_SCALE = 1e-6

_L_SHOULDER, _R_SHOULDER = BODY_JOINTS.index("left_shoulder"), BODY_JOINTS.index("right_shoulder")
_L_HIP, _R_HIP = BODY_JOINTS.index("left_hip"), BODY_JOINTS.index("right_hip")


class PoseError(GADError, ValueError):
    """Keypoint arrays the pose features cannot take (wrong shape, non-finite points)."""


def pose_features(points: np.ndarray, visibility: np.ndarray, present: bool | float) -> np.ndarray:
    """One frame: points [13, 2] in image coordinates, visibility [13], present → float32 [40]."""
    points = np.asarray(points, dtype=np.float64)
    visibility = np.asarray(visibility, dtype=np.float64)
    if points.shape != (NUM_JOINTS, 2):
        raise PoseError(f"points have shape {points.shape}, expected ({NUM_JOINTS}, 2)")
    if visibility.shape != (NUM_JOINTS,):
        raise PoseError(f"visibility has shape {visibility.shape}, expected ({NUM_JOINTS},)")
    rows = pose_features_batch(points[None], visibility[None], np.array([float(present)]))
    row: np.ndarray = rows[0]
    return row


def pose_features_batch(
    points: np.ndarray, visibility: np.ndarray, present: np.ndarray
) -> np.ndarray:
    """N frames: points [N, 13, 2], visibility [N, 13], present [N] → float32 [N, 40]."""
    points = np.asarray(points, dtype=np.float64)
    visibility = np.asarray(visibility, dtype=np.float64)
    present = np.asarray(present, dtype=np.float64)
    if points.ndim != 3 or points.shape[1:] != (NUM_JOINTS, 2):
        raise PoseError(f"points have shape {points.shape}, expected (N, {NUM_JOINTS}, 2)")
    n = points.shape[0]
    if visibility.shape != (n, NUM_JOINTS):
        raise PoseError(f"visibility has shape {visibility.shape}, expected ({n}, {NUM_JOINTS})")
    if present.shape != (n,):
        raise PoseError(f"present has shape {present.shape}, expected ({n},)")
    if not np.isfinite(present).all():
        raise PoseError("present holds NaN or infinite values, expected probabilities")
    person = present >= PRESENT_THRESHOLD
    if not np.isfinite(points[person]).all():
        bad = int(np.flatnonzero(person & ~np.isfinite(points).all(axis=(1, 2)))[0])
        raise PoseError(f"frame {bad} has a person but NaN or infinite points")

    out = np.zeros((n, FEATURE_DIM), dtype=np.float32)
    out[:, -1] = present
    if not person.any():
        return out
    pts = points[person]
    hip = (pts[:, _L_HIP] + pts[:, _R_HIP]) / 2
    shoulder = (pts[:, _L_SHOULDER] + pts[:, _R_SHOULDER]) / 2
    torso = np.linalg.norm(shoulder - hip, axis=1)
    extent = (pts.max(axis=1) - pts.min(axis=1)).max(axis=1)
    scale = np.maximum(np.maximum(torso, extent * SCALE_FLOOR_OF_EXTENT), MIN_SCALE)
    normalised = (pts - hip[:, None, :]) / scale[:, None, None]
    out[person, : NUM_JOINTS * 2] = normalised.reshape(len(pts), -1)
    vis = np.nan_to_num(visibility[person], nan=0.0)
    out[person, NUM_JOINTS * 2 : NUM_JOINTS * 3] = np.clip(vis, 0.0, 1.0)
    return out
