"""BlazePose's landmark model (full): an upright 256×256 crop → 39 landmarks + pose flag.

Input: the ROI crop (roi.py), RGB scaled to [0, 1]. Outputs used (the converted graph keeps
only these; the segmentation mask and heatmaps are dropped at conversion):
  Identity    [batch, 195]  39 landmarks × (x, y, z, visibility logit, presence logit),
                            x and y in crop pixels. 0-32 are the body landmarks (0 nose,
                            11/12 shoulders, 23/24 hips, ...; "left" is the person's left),
                            33-38 auxiliary points: 33 the hip midpoint and 34 the
                            body-size point, as the detector's keypoints 0 and 1, so
                            they give the next frame's ROI (tracking).
  Identity_1  [batch, 1]    pose flag: probability that the crop holds a person (already
                            a sigmoid inside the graph).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from runtime.pose.roi import CROP_SIZE, Roi, roi_from_keypoints

NUM_LANDMARKS = 39
BODY_LANDMARKS = 33
VALUES = 5


@dataclass(frozen=True)
class Landmarks:
    """One frame's body landmarks in frame pixels."""

    points: np.ndarray  # float32 [33, 2] x, y
    visibility: np.ndarray  # float32 [33] in [0, 1]
    presence: np.ndarray  # float32 [33] in [0, 1]
    present: float  # the pose flag
    alignment: np.ndarray  # float32 [2, 2]: landmarks 33 and 34 (hip midpoint, body point)

    def next_roi(self) -> Roi:
        """The ROI for the next frame, from this frame's pose (no detector needed)."""
        return roi_from_keypoints(self.alignment[0], self.alignment[1])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0))))


class LandmarkModel:
    """`pose_landmark.onnx` (input `input_1` [batch, 256, 256, 3])."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.output_names = ["Identity", "Identity_1"]

    def run(self, crops: np.ndarray, rois: list[Roi]) -> list[Landmarks]:
        """uint8 crops [N, 256, 256, 3] and their ROIs → landmarks in frame pixels."""
        if crops.shape[1:] != (CROP_SIZE, CROP_SIZE, 3) or len(crops) != len(rois):
            raise ValueError(
                f"crops must be [{len(rois)}, {CROP_SIZE}, {CROP_SIZE}, 3], got {crops.shape}"
            )
        if not len(crops):
            return []
        pixels = crops.astype(np.float32) * (1.0 / 255.0)
        raw, flag = self.session.run(self.output_names, {self.input_name: pixels})
        values = np.asarray(raw, dtype=np.float64).reshape(len(crops), NUM_LANDMARKS, VALUES)
        out = []
        for i, roi in enumerate(rois):
            points = roi.to_image(values[i, :, :2]).astype(np.float32)
            body = values[i, :BODY_LANDMARKS]
            out.append(
                Landmarks(
                    points=points[:BODY_LANDMARKS],
                    visibility=_sigmoid(body[:, 3]).astype(np.float32),
                    presence=_sigmoid(body[:, 4]).astype(np.float32),
                    present=float(flag[i, 0]),
                    alignment=points[BODY_LANDMARKS : BODY_LANDMARKS + 2],
                )
            )
        return out
