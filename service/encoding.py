"""The frame-encoder stage: preprocessed frames → feature rows, batched across streams.

    PlainEncoding    an image encoder (encoder.onnx): a frame's row depends on the frame only
    TrackedEncoding  the pose encoder: a frame's row and the stream's next ROI (the person
                     it follows) from the frame and the ROI the stream's previous frame left

`open_encoding` picks one by the package's encoder (the one place that asks); the session
calls `prepare(rgb)` on a decoded camera frame in its worker thread (off the loop), then
`encode(prepared, track)` either way and gets an `Encoded`: the row, the encoder state it
keeps for the stream, and what the encoder saw (a pose: joints, box, person or nobody — the
page draws it), placed on the camera frame.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

import numpy as np

from runtime.encoders import FrameEncoderKind, FramePreprocess
from runtime.pose.encoder import PoseFrameEncoder
from runtime.pose.roi import ROI_VALUES, Roi, rois_from_array, rois_to_array
from runtime.pose.view import Placement, PoseView
from service.batcher import MicroBatcher, OnBatch


class Prepared(NamedTuple):
    """A camera frame made ready for the encoder stage (in the caller's thread)."""

    pixels: np.ndarray  # the encoder's per-frame input (fixed shape: batched across streams)
    frame: tuple[int, int]  # the camera frame's height and width


class Encoded(NamedTuple):
    row: np.ndarray  # float32 [feature_dim]
    track: Roi | None  # the encoder's state for the stream's next frame (None: none/nobody)
    view: PoseView | None  # what a pose encoder saw (None: an image encoder)


class FrameEncoding(Protocol):
    encoder: FrameEncoderKind

    @property
    def name(self) -> str: ...

    @property
    def preprocess(self) -> FramePreprocess: ...

    def start(self) -> None: ...

    async def close(self) -> None: ...

    def prepare(self, rgb: np.ndarray) -> Prepared:
        """A decoded uint8 RGB camera frame [H, W, 3] → the stage's input (FrameError: a
        frame it cannot use). Blocking: call it from a worker thread."""
        ...

    async def encode(self, prepared: Prepared, track: Roi | None = None) -> Encoded:
        """One prepared frame → its feature row, the stream's encoder state for its next
        frame (a pose encoder's ROI; None: none kept, or nobody in view), and what the
        encoder saw, placed on the camera frame."""
        ...


class _Encoding:
    encoder: FrameEncoderKind
    batcher: MicroBatcher

    @property
    def name(self) -> str:
        return self.encoder.name

    @property
    def preprocess(self) -> FramePreprocess:
        return self.encoder.preprocess

    def start(self) -> None:
        self.batcher.start()

    def prepare(self, rgb: np.ndarray) -> Prepared:
        pixels: np.ndarray = self.preprocess.apply(rgb)[0]  # FrameError: e.g. absurd aspect
        return Prepared(pixels, (int(rgb.shape[0]), int(rgb.shape[1])))

    async def close(self) -> None:
        await self.batcher.close()


class PlainEncoding(_Encoding):
    def __init__(
        self, encoder: FrameEncoderKind, *, max_batch: int, max_wait_s: float, on_batch: OnBatch
    ) -> None:
        self.encoder = encoder
        self.batcher = MicroBatcher(
            encoder.encode_pixels,
            max_batch=max_batch,
            max_wait_s=max_wait_s,
            collate=lambda items: (np.stack([item[0] for item in items]),),
            validate=encoder.check_pixels,
            on_batch=on_batch,
        )

    async def encode(self, prepared: Prepared, track: Roi | None = None) -> Encoded:
        return Encoded(await self.batcher.submit(prepared.pixels), None, None)


class TrackedEncoding(_Encoding):
    """Each item a frame and its stream's ROI; each result row the frame's features, the
    stream's next ROI and what the encoder saw (one array, so each caller gets its own row)."""

    def __init__(
        self, encoder: PoseFrameEncoder, *, max_batch: int, max_wait_s: float, on_batch: OnBatch
    ) -> None:
        self.encoder = self.pose = encoder
        self.batcher = MicroBatcher(
            _tracked_batch(encoder),
            max_batch=max_batch,
            max_wait_s=max_wait_s,
            collate=lambda items: (
                np.stack([i[0] for i in items]),
                np.stack([i[1] for i in items]),
            ),
            validate=_tracked_item(encoder),
            on_batch=on_batch,
        )

    async def encode(self, prepared: Prepared, track: Roi | None = None) -> Encoded:
        out = await self.batcher.submit(prepared.pixels, rois_to_array([track])[0])
        dim = self.pose.feature_dim
        (roi,) = rois_from_array(out[None, dim : dim + ROI_VALUES])
        placement = Placement.letterboxed(*prepared.frame, self.pose.preprocess.size)
        view = PoseView.from_values(out[dim + ROI_VALUES :], placement)
        return Encoded(out[:dim].astype(np.float32), roi, view)


def open_encoding(
    encoder: FrameEncoderKind, *, max_batch: int, max_wait_s: float, on_batch: OnBatch
) -> FrameEncoding:
    """The stage for `encoder`: tracked for the pose encoder, plain for an image encoder."""
    if isinstance(encoder, PoseFrameEncoder):
        return TrackedEncoding(
            encoder, max_batch=max_batch, max_wait_s=max_wait_s, on_batch=on_batch
        )
    return PlainEncoding(encoder, max_batch=max_batch, max_wait_s=max_wait_s, on_batch=on_batch)


def _tracked_batch(encoder: PoseFrameEncoder) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Frames [B, S, S, 3] and their streams' ROIs [B, 4] → [B, D + 4 + VIEW_VALUES]."""

    def run(pixels: np.ndarray, rois: np.ndarray) -> np.ndarray:
        rows, following, seen = encoder.encode_pixels_seen(pixels, rois)
        out = np.concatenate([rows.astype(np.float64), following, seen], axis=1)
        return out

    return run


def _tracked_item(encoder: PoseFrameEncoder) -> Callable[..., tuple[np.ndarray, ...]]:
    """One stream's item: a letterboxed frame and its ROI (float [4], NaN: none)."""

    def check(pixels: np.ndarray, roi: np.ndarray) -> tuple[np.ndarray, ...]:
        rois_from_array(np.asarray(roi)[None])  # a bad ROI fails its caller, not the batch
        return (*encoder.check_pixels(pixels), np.asarray(roi, dtype=np.float64))

    return check
