"""Encoding one clip's frames in order, the pose ROI tracked from each frame to the next.

`/classify` (service/classify.py) and the real-footage labels (docs/real-footage/) encode a
whole clip batch after batch; a stream's session tracks its ROI frame by frame through the
service's micro-batcher (service/encoding.py). Both track, so a clip posted to `/classify`
and the same clip streamed give the same rows.

    encode = clip_encoder(encoder)       # a new tracker per clip
    rows = encode(preprocessed_frames)   # call again with the clip's next frames

An image encoder (no state between frames) is its own `encode_pixels`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from runtime.pose.encoder import PoseFrameEncoder
from runtime.pose.roi import Roi
from runtime.pose_features import FEATURE_DIM


class PixelEncoder(Protocol):
    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray: ...


class PoseTrack:
    """One clip (or stream) seen by a pose encoder: the ROI its last frame left."""

    def __init__(self, encoder: PoseFrameEncoder) -> None:
        self.encoder = encoder
        self.roi: Roi | None = None  # None: the next frame runs the detector

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """The clip's next preprocessed frames [N, H, W, 3], in order → rows [N, D]. One
        frame at a time: each frame's ROI (in its pixels) is the one before's."""
        rows = [np.zeros((0, FEATURE_DIM), np.float32)]
        for frame in pixels:
            row, (self.roi,) = self.encoder.encode_tracked([frame], [self.roi])
            rows.append(row)
        return np.concatenate(rows)


def clip_encoder(encoder: PixelEncoder) -> Callable[[np.ndarray], np.ndarray]:
    """What encodes one clip's preprocessed frames, batch after batch in order: a pose
    encoder's PoseTrack (new per clip), or an image encoder's own `encode_pixels`."""
    if isinstance(encoder, PoseFrameEncoder):
        return PoseTrack(encoder).encode_pixels
    return encoder.encode_pixels
