"""The landmark model's region of interest: a rotated square around the body.

From the detector's first two keypoints, as MediaPipe's pose graph builds it: the square is
centred on the hip midpoint (keypoint 0), its side is twice the distance to keypoint 1,
enlarged by 1.25 so the limbs fit, and it is turned so that the direction hip → keypoint 1
points up in the crop. An upright person gives rotation 0; a person lying down is rotated
upright, which is what the landmark model was trained on.

The crop is one `cv2.warpAffine` of the frame with the crop → frame matrix (WARP_INVERSE_MAP),
zero outside the frame; the same matrix maps landmarks from crop pixels back to frame pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

ROI_SCALE = 1.25
CROP_SIZE = 256


@dataclass(frozen=True)
class Roi:
    """A square in frame pixels: centre, side and rotation (radians; positive turns the
    crop's axes clockwise on screen, y pointing down)."""

    centre_x: float
    centre_y: float
    size: float
    rotation: float

    def crop_to_image(self, crop_size: int = CROP_SIZE) -> np.ndarray:
        """float64 [2, 3]: crop pixel (u, v, 1) → frame pixel (x, y)."""
        scale = self.size / crop_size
        cos, sin = math.cos(self.rotation) * scale, math.sin(self.rotation) * scale
        half = crop_size / 2
        # frame = centre + R · (crop - half), R's columns the crop's x and y axes in the frame.
        return np.array(
            [
                [cos, -sin, self.centre_x - cos * half + sin * half],
                [sin, cos, self.centre_y - sin * half - cos * half],
            ]
        )

    def to_list(self) -> list[float]:
        """Four numbers, for a stream's stored state (from_list reads them back)."""
        return [self.centre_x, self.centre_y, self.size, self.rotation]

    @classmethod
    def from_list(cls, values: list[float] | np.ndarray) -> Roi:
        numbers = [float(v) for v in values]
        if len(numbers) != 4 or not np.isfinite(numbers).all() or numbers[2] <= 0:
            raise ValueError(f"an ROI is [centre x, centre y, size > 0, rotation], got {numbers}")
        return cls(*numbers)

    def to_image(self, points: np.ndarray, crop_size: int = CROP_SIZE) -> np.ndarray:
        """Crop pixels [..., 2] → frame pixels [..., 2]."""
        matrix = self.crop_to_image(crop_size)
        return np.asarray(points @ matrix[:, :2].T + matrix[:, 2])


def roi_from_keypoints(hip: np.ndarray, body: np.ndarray) -> Roi:
    """The ROI for the detector's hip-midpoint and body keypoints (frame pixels)."""
    dx, dy = float(body[0] - hip[0]), float(body[1] - hip[1])
    # Upright (body point straight above the hips, dy < 0) is rotation 0.
    rotation = _wrap(math.pi / 2 - math.atan2(-dy, dx))
    size = 2.0 * math.hypot(dx, dy) * ROI_SCALE
    return Roi(float(hip[0]), float(hip[1]), max(size, 1.0), rotation)


def crop(frame: np.ndarray, roi: Roi, crop_size: int = CROP_SIZE) -> np.ndarray:
    """uint8 RGB frame → uint8 [crop_size, crop_size, 3], the ROI turned upright."""
    return cv2.warpAffine(
        frame,
        roi.crop_to_image(crop_size),
        (crop_size, crop_size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


def _wrap(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))
