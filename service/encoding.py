"""The frame-encoder stage: preprocessed frames → feature rows, batched across streams.

    PlainEncoding    an image encoder (encoder.onnx): a frame's row depends on the frame only
    TrackedEncoding  the pose encoder: a frame's row and the stream's next ROI (the person
                     it follows) from the frame and the ROI the stream's previous frame left

`open_encoding` picks one by the package's encoder (the one place that asks); the session
decodes a camera frame as `frame_reduction` says and calls `prepare(rgb)` on it in its worker
thread (off the loop), then `encode(prepared, track)` either way and gets an `Encoded`: the
row, the encoder state it keeps for the stream, and what the encoder saw (a pose: joints,
box, person or nobody — the page draws it), placed on the camera frame.

The pose encoder takes the frame as it is (no letterbox: the landmark crop is cut from it),
so a JPEG is decoded at reduced size (`decode_frame`: 1/2, 1/4 or 1/8, while decoding)
where the encoder needs no more pixels: the stream's tracked ROI keeps at least the
landmark model's 256 pixels, and the frame at least 256 on its longer side (the detector's
224 input, should the person be lost); a stream with no ROI (its first frame, or nobody in
view) keeps at least the package's `size` (512, what the old letterbox gave the detector
and the first crop). A stream's ROI is kept in units of the frame's longer side, so it
holds whatever size the next frame is decoded at.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

import numpy as np

from runtime.encoders import FrameEncoderKind, FramePreprocess
from runtime.pose.encoder import PoseFrameEncoder, PoseFrames
from runtime.pose.roi import CROP_SIZE, ROI_VALUES, Roi, rois_from_array, rois_to_array
from runtime.pose.view import Placement, PoseView
from service.batcher import MicroBatcher, OnBatch
from service.frames import Reduction, decode_image

DIVISORS = (8, 4, 2)  # the reduced JPEG decodes, smallest first
TRACKED_MIN_SIDE = 256  # a tracked frame's longer side: the detector's 224 input, if lost


def frame_reduction(preprocess: FramePreprocess | None, track: Roi | None) -> Reduction | None:
    """How a stream's next camera frame may be decoded (service/frames.py `decode_image`'s
    `reduce`): for the pose encoder, a JPEG at the smallest size it reads whole (module
    docstring), `track` being the stream's ROI as `encode` left it (units of the frame's
    longer side); None (decoded whole) for an image encoder."""
    if not isinstance(preprocess, PoseFrames):
        return None
    size = preprocess.size

    def reduce(width: int, height: int) -> int:
        return pose_divisor(max(width, height), size, track)

    return reduce


def decode_frame(
    data: bytes,
    preprocess: FramePreprocess | None,
    track: Roi | None,
    *,
    max_bytes: int,
    max_pixels: int,
) -> np.ndarray:
    """A stream's camera frame (image bytes) → RGB, decoded as `frame_reduction` says."""
    reduce = frame_reduction(preprocess, track)
    return decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels, reduce=reduce)


def pose_divisor(longer: int, size: int, track: Roi | None) -> int:
    """The largest JPEG reduction (8, 4, 2, else 1) that leaves a pose frame of `longer`
    pixels on its longer side enough: with a tracked ROI (units of the longer side) the
    ROI at least CROP_SIZE and the side at least TRACKED_MIN_SIDE, without one the side at
    least `size`."""
    for divisor in DIVISORS:
        side = longer / divisor
        if track is None:
            if side >= size:
                return divisor
        elif side >= TRACKED_MIN_SIDE and track.size * side >= CROP_SIZE:
            return divisor
    return 1


class Prepared(NamedTuple):
    """A camera frame made ready for the encoder stage (in the caller's thread)."""

    # the encoder's per-frame input: an image encoder's fixed shape; a pose encoder's frame
    # as decoded (batched across streams as a list)
    pixels: np.ndarray
    frame: tuple[int, int]  # the camera frame's height and width (as decoded)


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
            collate=lambda items: ([i[0] for i in items], np.stack([i[1] for i in items])),
            validate=_tracked_item(encoder),
            on_batch=on_batch,
        )

    async def encode(self, prepared: Prepared, track: Roi | None = None) -> Encoded:
        """`track` and the returned ROI are in units of the frame's longer side."""
        height, width = prepared.pixels.shape[:2]
        longer = max(height, width)
        roi_px = None if track is None else track.scaled(longer)
        out = await self.batcher.submit(prepared.pixels, rois_to_array([roi_px])[0])
        dim = self.pose.feature_dim
        (roi,) = rois_from_array(out[None, dim : dim + ROI_VALUES])
        view = PoseView.from_values(out[dim + ROI_VALUES :], Placement(width, height))
        following = None if roi is None else roi.scaled(1.0 / longer)
        return Encoded(out[:dim].astype(np.float32), following, view)


def open_encoding(
    encoder: FrameEncoderKind, *, max_batch: int, max_wait_s: float, on_batch: OnBatch
) -> FrameEncoding:
    """The stage for `encoder`: tracked for the pose encoder, plain for an image encoder."""
    if isinstance(encoder, PoseFrameEncoder):
        return TrackedEncoding(
            encoder, max_batch=max_batch, max_wait_s=max_wait_s, on_batch=on_batch
        )
    return PlainEncoding(encoder, max_batch=max_batch, max_wait_s=max_wait_s, on_batch=on_batch)


def _tracked_batch(
    encoder: PoseFrameEncoder,
) -> Callable[[list[np.ndarray], np.ndarray], np.ndarray]:
    """B frames (each its own size) and their streams' ROIs [B, 4] (in each frame's
    pixels) → [B, D + 4 + VIEW_VALUES]."""

    def run(pixels: list[np.ndarray], rois: np.ndarray) -> np.ndarray:
        rows, following, seen = encoder.encode_pixels_seen(pixels, rois)
        out = np.concatenate([rows.astype(np.float64), following, seen], axis=1)
        return out

    return run


def _tracked_item(encoder: PoseFrameEncoder) -> Callable[..., tuple[np.ndarray, ...]]:
    """One stream's item: a frame and its ROI (float [4] in the frame's pixels, NaN: none)."""

    def check(pixels: np.ndarray, roi: np.ndarray) -> tuple[np.ndarray, ...]:
        rois_from_array(np.asarray(roi)[None])  # a bad ROI fails its caller, not the batch
        return (*encoder.check_pixels(pixels), np.asarray(roi, dtype=np.float64))

    return check
