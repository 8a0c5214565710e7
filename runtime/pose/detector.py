"""BlazePose's person detector: frames → the most confident person, or None.

Input: the frame letterboxed (aspect kept, zero borders) into 224×224, RGB scaled to
[-1, 1]. Output per anchor (anchors.py): a score logit and 12 values — a box (centre x, y,
width, height; used for suppression only) then 4 keypoints (x, y) — in input pixels,
relative to the anchor centre. The keypoints: 0 the hip midpoint, 1 a point whose distance
from it gives the whole body's size and whose direction gives its rotation (roi.py), 2 the
shoulder midpoint, 3 the same kind of point for the upper body.

Decoding as MediaPipe's pose graph does: sigmoid score (logits clipped to ±100), keep
scores ≥ 0.5, then weighted non-maximum suppression at IoU 0.3 — boxes that overlap the
best one are averaged into it, weighted by score, which steadies the keypoints. Only the
best person is kept: the features describe one body per frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from runtime.pose.anchors import INPUT_SIZE, NUM_ANCHORS, anchor_centres
from runtime.preprocess import check_frames

SCORE_THRESHOLD = 0.5
NMS_IOU = 0.3
SCORE_CLIP = 100.0
NUM_KEYPOINTS = 4


@dataclass(frozen=True)
class Detection:
    """One person in image pixels (x right, y down)."""

    score: float
    box: np.ndarray  # [4] xmin, ymin, xmax, ymax
    keypoints: np.ndarray  # [4, 2]


@dataclass(frozen=True)
class Letterbox:
    """Where a frame lies inside a square model input: input = frame · scale + offset."""

    scale: float
    offset: tuple[float, float]  # x, y

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Input pixels [..., 2] → frame pixels."""
        return (points - np.asarray(self.offset, dtype=np.float32)) / self.scale


def letterbox(frame: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """uint8 RGB [H, W, 3] → uint8 [size, size, 3], the frame centred with zero borders."""
    height, width = frame.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(frame, (new_w, new_h), interpolation=interpolation)
    left, top = (size - new_w) // 2, (size - new_h) // 2
    out = np.zeros((size, size, 3), dtype=np.uint8)
    out[top : top + new_h, left : left + new_w] = resized
    return out, Letterbox(scale, (float(left), float(top)))


class PoseDetector:
    """`pose_detection.onnx` (input `input_1` [batch, 224, 224, 3]) and its decoding."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.anchors = anchor_centres()

    def detect(
        self, frames: np.ndarray | Sequence[np.ndarray]
    ) -> tuple[list[Detection | None], np.ndarray]:
        """uint8 RGB [N, H, W, 3] (or a list of [H, W, 3] of any sizes) → the best person
        per frame (None: nobody) and each frame's best score (a probability; below 0.5
        where nobody was found)."""
        if isinstance(frames, np.ndarray):
            frames = list(check_frames(frames))
        else:
            frames = [check_frames(frame)[0] for frame in frames]
        inputs, boxes = [], []
        for frame in frames:
            pixels, placement = letterbox(frame, INPUT_SIZE)
            inputs.append(pixels)
            boxes.append(placement)
        batch = np.stack(inputs).astype(np.float32) * (2.0 / 255.0) - 1.0
        raw, logits = self.session.run(None, {self.input_name: batch})
        found: list[Detection | None] = []
        best = np.zeros(len(frames), dtype=np.float32)
        for i, placement in enumerate(boxes):
            detection, best[i] = decode(raw[i], logits[i, :, 0])
            if detection is not None:
                detection = Detection(
                    detection.score,
                    placement.to_image(detection.box.reshape(2, 2)).reshape(4),
                    placement.to_image(detection.keypoints),
                )
            found.append(detection)
        return found, best


def decode(raw: np.ndarray, logits: np.ndarray) -> tuple[Detection | None, float]:
    """One frame's outputs ([2254, 12], [2254]) → its best person in input pixels, and the
    best score."""
    if raw.shape != (NUM_ANCHORS, 4 + 2 * NUM_KEYPOINTS) or logits.shape != (NUM_ANCHORS,):
        raise ValueError(f"detector outputs {raw.shape}, {logits.shape}: expected 2254 anchors")
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -SCORE_CLIP, SCORE_CLIP)))
    top = float(scores.max())
    keep = np.flatnonzero(scores >= SCORE_THRESHOLD)
    if not len(keep):
        return None, top
    anchors = anchor_centres() * INPUT_SIZE  # anchor centres in input pixels (unit size)
    values = raw[keep].astype(np.float64)
    centre = values[:, 0:2] + anchors[keep]
    half = values[:, 2:4] / 2
    box = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = values[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) + anchors[keep][:, None, :]
    score = scores[keep]
    first = int(np.argmax(score))
    overlap = _iou(box[first], box)
    cluster = overlap > NMS_IOU
    weight = score[cluster] / score[cluster].sum()
    return (
        Detection(
            float(score[first]),
            (box[cluster] * weight[:, None]).sum(axis=0).astype(np.float32),
            (keypoints[cluster] * weight[:, None, None]).sum(axis=0).astype(np.float32),
        ),
        top,
    )


def _iou(one: np.ndarray, many: np.ndarray) -> np.ndarray:
    low = np.maximum(one[:2], many[:, :2])
    high = np.minimum(one[2:], many[:, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=1)
    area = np.prod(one[2:] - one[:2])
    areas = np.prod(many[:, 2:] - many[:, :2], axis=1)
    union = area + areas - inter
    return np.asarray(np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0))
