"""What the pose encoder saw, placed back on the camera frame (runtime/pose/view.py)."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.pose.detector import letterbox
from runtime.pose.view import BONES, SKELETON, VIEW_VALUES, Placement, PoseView, view_values
from runtime.pose_features import BODY_JOINTS, NUM_JOINTS


@pytest.mark.parametrize("height, width", [(720, 1280), (994, 1768), (480, 360), (512, 512)])
def test_placement_undoes_the_letterbox(height: int, width: int) -> None:
    """A marked pixel of the frame, found in the letterboxed square, maps back to its own
    fraction of the frame (within a square pixel)."""
    frame = np.zeros((height, width, 3), np.uint8)
    x, y = int(width * 0.7), int(height * 0.25)
    frame[y - 3 : y + 4, x - 3 : x + 4] = 255
    square, _ = letterbox(frame, 512)
    ys, xs = np.nonzero(square[..., 0] > 100)
    found = np.array([xs.mean(), ys.mean()])
    placement = Placement.letterboxed(height, width, 512)
    fx, fy = placement.fractions(found)
    tolerance = 1.5 / (512 * min(width, height) / max(width, height))
    assert abs(fx - x / width) < tolerance and abs(fy - y / height) < tolerance


def _values(points: np.ndarray, present: float) -> np.ndarray:
    visibility = np.linspace(0.1, 0.9, NUM_JOINTS, dtype=np.float32)[None]
    return view_values(points[None], visibility, np.array([present]))[0]


def test_a_person_becomes_points_and_a_box_in_frame_fractions() -> None:
    placement = Placement.letterboxed(720, 1280, 512)  # scale 0.4, 112 px bars top and bottom
    points = np.stack([np.linspace(100, 400, NUM_JOINTS), np.linspace(150, 300, NUM_JOINTS)], 1)
    values = _values(points.astype(np.float32), 0.9)
    assert values.shape == (VIEW_VALUES,)
    view = PoseView.from_values(values, placement)
    assert view.person and view.points is not None and view.box is not None
    np.testing.assert_allclose(view.points[0, :2], [(100 / 0.4) / 1280, (150 - 112) / 0.4 / 720])
    np.testing.assert_allclose(view.points[:, 2], np.linspace(0.1, 0.9, NUM_JOINTS), atol=1e-6)
    # Around the joints seen (visibility >= 0.5: the last 7), padded by a tenth each side.
    seen = view.points[view.points[:, 2] >= 0.5, :2]
    (x0, y0), (x1, y1) = seen.min(0), seen.max(0)
    pad = np.array([x1 - x0, y1 - y0]) * 0.1
    np.testing.assert_allclose(view.box, [x0 - pad[0], y0 - pad[1], x1 + pad[0], y1 + pad[1]])
    wire = view.to_wire()
    assert len(wire["points"]) == NUM_JOINTS and wire["box"] is not None
    assert wire["present"] == 0.9 and all(0 <= v <= 1 for p in wire["points"] for v in p)


def test_nobody_has_no_points_and_no_box() -> None:
    placement = Placement.letterboxed(480, 640, 512)
    nan = np.full((NUM_JOINTS, 2), np.nan, np.float32)
    for values in (_values(nan, 0.2), _values(np.ones((NUM_JOINTS, 2), np.float32), 0.3)):
        view = PoseView.from_values(values, placement)
        assert not view.person and view.box is None
        assert view.to_wire() == {"present": view.to_wire()["present"], "points": [], "box": None}


def test_the_skeleton_names_every_joint_and_joins_them() -> None:
    assert SKELETON["joints"] == list(BODY_JOINTS)
    joined = {i for bone in BONES for i in bone}
    assert joined == set(range(NUM_JOINTS)) - {BODY_JOINTS.index("nose")}
    assert all(a != b for a, b in BONES)
