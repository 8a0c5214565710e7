"""The landmark model's region of interest: a rotated square around the body.

From the detector's first two keypoints, as MediaPipe's pose graph builds it: the square is
centred on the hip midpoint (keypoint 0), its side is twice the distance to keypoint 1,
enlarged by 1.25 so the limbs fit, and it is turned so that the direction hip → keypoint 1
points up in the crop. An upright person gives rotation 0; a person lying down is rotated
upright, which is what the landmark model was trained on.

The crop is cut from the camera frame itself (at whatever size it came), not from a
resized copy of the whole frame: one `cv2.warpAffine` with the crop → frame matrix
(WARP_INVERSE_MAP), zero outside the frame; the same matrix maps landmarks from crop pixels
back to frame pixels. Bilinear sampling skips pixels once the ROI is more than twice the
crop's side, so such an ROI's bounding box is first averaged down (cv2 INTER_AREA, the
region alone, never the whole frame) to about the crop's scale. The work is the region's
size, not the frame's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

ROI_SCALE = 1.25
CROP_SIZE = 256
ROI_VALUES = 4  # centre x, centre y, size, rotation
MIN_TRACK_SIZE = 16.0  # pixels: a smaller ROI is no body to track


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

    def usable(self, width: int, height: int) -> bool:
        """Whether a tracked ROI can stand in for a detection on a width × height frame:
        finite, its side at least MIN_TRACK_SIZE and at most four times the frame's larger
        side, and reaching into the frame (its centre may lie outside: the hips of a person
        seen from the waist up are below the frame, as the detector's own ROI says)."""
        if not np.isfinite(self.to_list()).all():
            return False
        half = self.size / 2
        return (
            MIN_TRACK_SIZE <= self.size <= 4.0 * max(width, height)
            and -half < self.centre_x < width + half
            and -half < self.centre_y < height + half
        )

    def scaled(self, factor: float) -> Roi:
        """The same square in a frame scaled by `factor` (its centre and side; rotation kept):
        e.g. `scaled(1 / longer side)` gives a frame-size-free ROI, `scaled(longer side)`
        brings it back in a frame of any size."""
        return Roi(
            self.centre_x * factor, self.centre_y * factor, self.size * factor, self.rotation
        )

    def to_image(self, points: np.ndarray, crop_size: int = CROP_SIZE) -> np.ndarray:
        """Crop pixels [..., 2] → frame pixels [..., 2]."""
        matrix = self.crop_to_image(crop_size)
        return np.asarray(points @ matrix[:, :2].T + matrix[:, 2])


def rois_to_array(rois: Sequence[Roi | None]) -> np.ndarray:
    """ROIs → float64 [N, 4], a row of NaN where there is none (the array form a batch of
    streams' tracker states travels in)."""
    out = np.full((len(rois), ROI_VALUES), np.nan)
    for i, roi in enumerate(rois):
        if roi is not None:
            out[i] = roi.to_list()
    return out


def rois_from_array(values: np.ndarray) -> list[Roi | None]:
    """float [N, 4] → ROIs; a row with any NaN is None, another bad row a ValueError."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != ROI_VALUES:
        raise ValueError(f"ROIs must be [N, {ROI_VALUES}], got {list(values.shape)}")
    return [None if np.isnan(row).any() else Roi.from_list(row) for row in values]


def roi_from_keypoints(hip: np.ndarray, body: np.ndarray) -> Roi:
    """The ROI for the detector's hip-midpoint and body keypoints (frame pixels)."""
    dx, dy = float(body[0] - hip[0]), float(body[1] - hip[1])
    # Upright (body point straight above the hips, dy < 0) is rotation 0.
    rotation = _wrap(math.pi / 2 - math.atan2(-dy, dx))
    size = 2.0 * math.hypot(dx, dy) * ROI_SCALE
    return Roi(float(hip[0]), float(hip[1]), max(size, 1.0), rotation)


MAX_BILINEAR_SHRINK = 2.0  # frame pixels per crop pixel that bilinear sampling reads well


def crop(frame: np.ndarray, roi: Roi, crop_size: int = CROP_SIZE) -> np.ndarray:
    """uint8 RGB frame → uint8 [crop_size, crop_size, 3], the ROI turned upright."""
    matrix = roi.crop_to_image(crop_size)
    shrink = roi.size / crop_size
    if shrink > MAX_BILINEAR_SHRINK:
        frame, matrix = _averaged_region(frame, matrix, roi, shrink)
    return cv2.warpAffine(
        frame,
        matrix,
        (crop_size, crop_size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


def _averaged_region(
    frame: np.ndarray, matrix: np.ndarray, roi: Roi, shrink: float
) -> tuple[np.ndarray, np.ndarray]:
    """The ROI's bounding box (inside the frame) averaged over k × k blocks (k the whole
    part of `shrink`: cv2's exact box filter, on a grid fixed in the frame, so a region cut
    off by the frame's edge is averaged as the same region inside a larger frame), and the
    crop → region matrix that replaces the crop → frame one."""
    height, width = frame.shape[:2]
    k = int(shrink)
    reach = roi.size / 2 * (abs(math.cos(roi.rotation)) + abs(math.sin(roi.rotation))) + k
    x0 = max(0, math.floor(roi.centre_x - reach)) // k * k
    y0 = max(0, math.floor(roi.centre_y - reach)) // k * k
    x1 = x0 + (min(width, math.ceil(roi.centre_x + reach)) - x0) // k * k
    y1 = y0 + (min(height, math.ceil(roi.centre_y + reach)) - y0) // k * k
    if x1 - x0 < k or y1 - y0 < k:
        return frame, matrix
    size = ((x1 - x0) // k, (y1 - y0) // k)
    region = cv2.resize(frame[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
    # region pixel = (frame pixel - origin) / k + (1 / k - 1) / 2 (pixel centres).
    shifted = matrix / k
    shifted[:, 2] += (np.array([-x0, -y0]) + (1 - k) / 2) / k
    return region, shifted


def _wrap(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))
