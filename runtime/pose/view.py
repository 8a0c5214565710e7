"""What the pose encoder saw in one frame, for a viewer: the 13 feature joints and the
person's box, in the camera frame's own coordinates as fractions of its width and height (so a page
draws them on the video at whatever size it shows it), and whether a person was in view.

The encoder works on its own pixels (the frame as decoded, maybe at reduced size, since
issue 26; the letterboxed square before); `Placement` says where the camera frame lies in
them, and maps points back. A frame with nobody in it has
no points and no box: `person` is false, `present` says how sure the model is of that.

Carried through the service's micro-batcher as plain float arrays (`VIEW_VALUES` per frame:
x, y and visibility per joint, then the present probability), like the ROIs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from typing_extensions import TypedDict  # pydantic reads this one on Python 3.11

from runtime.pose_features import BODY_JOINTS, NUM_JOINTS, PRESENT_THRESHOLD

VIEW_VALUES = NUM_JOINTS * 3 + 1  # (x, y, visibility) per joint, then present

# The skeleton a viewer draws: pairs of BODY_JOINTS indices.
BONES: tuple[tuple[int, int], ...] = tuple(
    (BODY_JOINTS.index(a), BODY_JOINTS.index(b))
    for a, b in (
        ("left_shoulder", "right_shoulder"),
        ("left_shoulder", "left_elbow"),
        ("left_elbow", "left_wrist"),
        ("right_shoulder", "right_elbow"),
        ("right_elbow", "right_wrist"),
        ("left_shoulder", "left_hip"),
        ("right_shoulder", "right_hip"),
        ("left_hip", "right_hip"),
        ("left_hip", "left_knee"),
        ("left_knee", "left_ankle"),
        ("right_hip", "right_knee"),
        ("right_knee", "right_ankle"),
    )
)


class Skeleton(TypedDict):
    """The joints a pose carries, in order, and the bones between them (index pairs)."""

    joints: list[str]
    bones: list[tuple[int, int]]


SKELETON: Skeleton = {"joints": list(BODY_JOINTS), "bones": list(BONES)}


class PoseWire(TypedDict):
    """A frame's pose as the stream socket sends it (`?pose=1`)."""

    present: float  # the person-present probability
    points: list[tuple[float, float, float]]  # per BODY_JOINT: x, y (0..1 of the frame), vis
    box: tuple[float, float, float, float] | None  # left, top, right, bottom (0..1 of the frame)


@dataclass(frozen=True)
class Placement:
    """Where a camera frame (`width` × `height`) lies in the encoder's pixels: encoder pixel
    p = frame pixel · scale + offset."""

    width: int
    height: int
    scale: float = 1.0
    left: float = 0.0
    top: float = 0.0

    @classmethod
    def letterboxed(cls, height: int, width: int, size: int) -> Placement:
        """The frame scaled to fit a `size` square and centred (a letterbox)."""
        scale = size / max(height, width)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        return cls(width, height, scale, (size - new_w) // 2, (size - new_h) // 2)

    def fractions(self, points: np.ndarray) -> np.ndarray:
        """Encoder pixels [..., 2] → fractions of the frame's width and height."""
        frame = (np.asarray(points, np.float64) - (self.left, self.top)) / self.scale
        return frame / (self.width, self.height)


@dataclass(frozen=True)
class PoseView:
    present: float
    points: np.ndarray | None  # float [13, 3]: x, y as fractions of the frame, visibility
    # The person's box: left, top, right, bottom as fractions of the frame, around the joints
    # it sees (visibility >= 0.5; all joints when fewer than two are), padded by BOX_PAD of
    # its size. May reach past the frame's edges: a person cut off by them. None: nobody.
    box: tuple[float, float, float, float] | None

    @property
    def person(self) -> bool:
        return self.points is not None

    @classmethod
    def from_values(cls, values: np.ndarray, placement: Placement) -> PoseView:
        """One frame's `VIEW_VALUES` (encoder pixels) → the view in frame fractions."""
        values = np.asarray(values, np.float64)
        present = float(values[-1])
        joints = values[:-1].reshape(NUM_JOINTS, 3)
        if present < PRESENT_THRESHOLD or not np.isfinite(joints[:, :2]).all():
            return cls(present, None, None)
        points = np.concatenate([placement.fractions(joints[:, :2]), joints[:, 2:]], axis=1)
        seen = points[points[:, 2] >= 0.5] if (points[:, 2] >= 0.5).sum() >= 2 else points
        (left, top), (right, bottom) = seen[:, :2].min(0), seen[:, :2].max(0)
        pad_x, pad_y = (right - left) * BOX_PAD, (bottom - top) * BOX_PAD
        box = (float(left - pad_x), float(top - pad_y), float(right + pad_x), float(bottom + pad_y))
        return cls(present, points, box)

    def to_wire(self) -> PoseWire:
        points = [] if self.points is None else self.points.tolist()
        return {
            "present": round(self.present, 4),
            "points": [(round(x, 4), round(y, 4), round(v, 3)) for x, y, v in points],
            "box": None if self.box is None else _rounded(self.box),
        }


Box = tuple[float, float, float, float]
BOX_PAD = 0.1


def _rounded(box: Box) -> Box:
    left, top, right, bottom = (round(v, 4) for v in box)
    return left, top, right, bottom


def view_values(points: np.ndarray, visibility: np.ndarray, present: np.ndarray) -> np.ndarray:
    """The encoder's keypoints (`PoseFrameEncoder.keypoints`' three arrays: [N, 13, 2] in its
    pixels, [N, 13], [N]) → float64 [N, VIEW_VALUES]."""
    joints = np.concatenate([points, visibility[..., None]], axis=-1).reshape(len(present), -1)
    return np.concatenate([joints, np.asarray(present)[:, None]], axis=1).astype(np.float64)
