"""Video files in, RGB frames out at a fixed rate: `probe`, `FpsSampler`, `read_frames`.

The model sees one feature row per 1/fps seconds. Frames arrive at whatever rate the file
or the camera has, with timestamps; `FpsSampler` is the one rule that turns them into
rows, used for files here and for live streams by the service:

    slot k covers [t0 + k/fps, t0 + (k+1)/fps)
    row k is the first frame whose timestamp falls in slot k; later frames in the slot
    are skipped. A slot that no frame reaches (the input is slower than fps, or drops
    frames) repeats the previous row, so row k always stands for time t0 + k/fps and a
    file of duration d gives d × fps rows (± 1) whatever its native rate.

t0 is the first frame's timestamp (or the `start` given). A frame whose timestamp goes
backwards is skipped and counted. With `max_repeat` set (live streams), a jump of more
than `max_repeat` slots either way is a discontinuity (a stalled or restarted camera
clock): the frame becomes the next row and the clock is re-anchored at it, rather than
inventing rows or ignoring the stream until its clock catches up.

`read_frames` decodes at the native rate and feeds each frame's timestamp to the sampler:
CAP_PROP_POS_MSEC (the decoder's presentation time, exact on the MP4/AVI test clips), or
the previous timestamp + 1/native fps where it is missing or does not increase. A file
that stops decoding before the frame count its container promises raises `VideoError`
naming the frame and time (a truncated download); frames already yielded stand.

cv2 + numpy only: the service imports this without torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from runtime.errors import GADError

# Timestamps within this share of a slot below its start count as reaching it (10 fps
# frames at 0.1, 0.2, ... land on 4 fps slot starts up to float rounding).
_SLOT_EPS = 1e-6
# A decoder may stop this many frames short of the container's count without it
# counting as truncation (counts of some containers are estimates from the duration).
_COUNT_SLACK_FRAMES, _COUNT_SLACK_SHARE = 2, 0.01


class VideoError(GADError, ValueError):
    """A video that is missing, not a video, or cannot be decoded (to the end)."""


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    fps: float | None  # native frame rate; None when the container does not say
    frame_count: int | None  # as the container reports it (an estimate for some formats)
    width: int
    height: int

    @property
    def duration_s(self) -> float | None:
        if self.fps is None or self.frame_count is None:
            return None
        return self.frame_count / self.fps

    def rows(self, fps: float) -> int | None:
        """Rows `read_frames` gives at `fps` for a constant-rate file: the slot of its last
        frame + 1, which is duration × fps ± 1. None when the container does not say."""
        if self.fps is None or self.frame_count is None:
            return None
        return math.floor((self.frame_count - 1) / self.fps * fps + _SLOT_EPS) + 1


@dataclass(frozen=True)
class SampledFrame:
    t: float  # timestamp of the decoded frame, seconds
    row: int  # the feature row it becomes: row k stands for time t0 + k/fps
    rgb: np.ndarray  # [H, W, 3] uint8, RGB order
    repeated: bool = False  # True when this row repeats the previous frame (a gap)


class FpsSampler:
    """Turns timestamped frames at any rate into rows at `fps` (see the module docstring).

        sampler = FpsSampler(4.0)
        for ts, frame in frames:
            if sampler.offer(ts):
                for _ in range(sampler.repeat):
                    emit(previous)            # slots no frame reached
                emit(frame)                   # row sampler.row

    Counters: `rows` (rows so far, repeats included), `repeated`, `skipped` (frames that
    fell in an already-filled slot), `backwards` (frames older than one already seen),
    `resyncs` (discontinuities, only with `max_repeat`).
    """

    def __init__(self, fps: float, *, start: float | None = None, max_repeat: int | None = None):
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number, got {fps}")
        if max_repeat is not None and max_repeat < 0:
            raise ValueError(f"max_repeat must be >= 0 or None, got {max_repeat}")
        self.fps = float(fps)
        self.max_repeat = max_repeat
        self.t0 = start
        self.rows = 0
        self.repeat = 0  # after offer() returned True: empty slots before this row
        self.repeated = 0
        self.skipped = 0
        self.backwards = 0
        self.resyncs = 0
        self._last_ts: float | None = None

    @property
    def row(self) -> int:
        """Index of the latest row taken (-1 before the first)."""
        return self.rows - 1

    def slot(self, ts: float) -> int:
        """The slot a timestamp falls in (negative before t0)."""
        t0 = ts if self.t0 is None else self.t0
        return math.floor((ts - t0) * self.fps + _SLOT_EPS)

    def offer(self, ts: float) -> bool:
        """Take the frame at `ts` (seconds) as the next row? See `repeat` when it does."""
        if not math.isfinite(ts):
            raise ValueError(f"frame timestamp must be finite, got {ts}")
        self.repeat = 0
        if self.t0 is None:
            self.t0 = ts
        last = self._last_ts
        if last is not None and ts < last:
            if self.max_repeat is not None and self.slot(last) - self.slot(ts) > self.max_repeat:
                return self._resync(ts)
            self.backwards += 1
            return False
        self._last_ts = ts
        slot = self.slot(ts)
        if slot < self.rows:
            self.skipped += 1
            return False
        gap = slot - self.rows
        if self.max_repeat is not None and gap > self.max_repeat:
            return self._resync(ts)
        self.repeat = gap
        self.repeated += gap
        self.rows = slot + 1
        return True

    def _resync(self, ts: float) -> bool:
        """Make the frame at `ts` the next row: t0 moves so that its slot is `rows`."""
        self.t0 = ts - self.rows / self.fps
        self._last_ts = ts
        self.resyncs += 1
        self.rows += 1
        return True


def _open(path: Path) -> cv2.VideoCapture:
    path = Path(path)
    if not path.exists():
        raise VideoError(f"video {path} not found")
    if not path.is_file():
        raise VideoError(f"video {path} is not a file")
    api = cv2.CAP_FFMPEG if cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG) else cv2.CAP_ANY
    cap = cv2.VideoCapture(str(path), api)
    if not cap.isOpened():
        cap.release()
        raise VideoError(
            f"OpenCV cannot open {path} ({path.stat().st_size} bytes) as a video: "
            "not a video file, an unsupported codec, or a truncated/corrupt container"
        )
    return cap


def _info(path: Path, cap: cv2.VideoCapture) -> VideoInfo:
    fps = cap.get(cv2.CAP_PROP_FPS)
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    return VideoInfo(
        path=Path(path),
        fps=float(fps) if math.isfinite(fps) and 0 < fps < 10_000 else None,
        frame_count=int(count) if math.isfinite(count) and count > 0 else None,
        width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    )


def probe(path: Path | str, *, max_pixels: int | None = None) -> VideoInfo:
    """Native rate, frame count, size; decodes the first frame to prove the file plays.
    Frames of more than `max_pixels` are refused before any is decoded (a small file can
    claim a huge canvas)."""
    path = Path(path)
    cap = _open(path)
    try:
        info = _info(path, cap)
        if max_pixels is not None and info.width * info.height > max_pixels:
            raise VideoError(
                f"{path}: frames of {info.width}×{info.height} pixels are over the "
                f"{max_pixels}-pixel limit"
            )
        if not cap.grab() or not cap.retrieve()[0]:
            raise VideoError(f"{path} opens as a video but yields no frames")
    finally:
        cap.release()
    return info


class FrameReader:
    """A file's frames sampled at `fps`, from `start_s` (row 0 = start_s) to `end_s`.

    Iterate it for `SampledFrame`s; afterwards `decoded` (frames decoded), `sampler`
    (its counters) and `timestamp_fallbacks` say what happened. Opening probes the file,
    so a missing or unreadable file (or one over `max_pixels` per frame) raises
    `VideoError` here, before any iteration.
    """

    def __init__(
        self,
        path: Path | str,
        fps: float,
        *,
        start_s: float = 0.0,
        end_s: float | None = None,
        max_pixels: int | None = None,
    ):
        if start_s < 0 or (end_s is not None and end_s <= start_s):
            raise ValueError(f"need 0 <= start_s < end_s, got {start_s} and {end_s}")
        self.path = Path(path)
        self.info = probe(self.path, max_pixels=max_pixels)
        self.start_s, self.end_s = float(start_s), end_s
        self.sampler = FpsSampler(fps, start=self.start_s)
        self.decoded = 0
        self.timestamp_fallbacks = 0

    def __iter__(self) -> Iterator[SampledFrame]:
        cap = _open(self.path)
        try:
            yield from self._frames(cap)
        finally:
            cap.release()

    def _frames(self, cap: cv2.VideoCapture) -> Iterator[SampledFrame]:
        step = 1.0 / self.info.fps if self.info.fps else 1.0 / self.sampler.fps
        previous: SampledFrame | None = None
        last_ts: float | None = None
        while cap.grab():
            ts = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if not math.isfinite(ts) or ts < 0 or (last_ts is not None and ts <= last_ts):
                ts = 0.0 if last_ts is None else last_ts + step
                self.timestamp_fallbacks += 1
            last_ts = ts
            self.decoded += 1
            if self.end_s is not None and ts >= self.end_s:
                return
            if ts < self.start_s - _SLOT_EPS / self.sampler.fps or not self.sampler.offer(ts):
                continue
            ok, bgr = cap.retrieve()
            if not ok or bgr is None:
                raise VideoError(
                    f"{self.path}: frame {self.decoded - 1} (t={ts:.3f} s) could not be decoded"
                )
            frame = SampledFrame(ts, self.sampler.row, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            filler = previous or frame  # the first frame fills slots before it
            first_gap_row = frame.row - self.sampler.repeat
            for row in range(first_gap_row, frame.row):
                yield SampledFrame(filler.t, row, filler.rgb, repeated=True)
            yield frame
            previous = frame
        count = self.info.frame_count
        if count is not None and self.decoded < count - max(
            _COUNT_SLACK_FRAMES, _COUNT_SLACK_SHARE * count
        ):
            at = f"{last_ts:.2f} s" if last_ts is not None else "the start"
            expected = f"{count} frames" + (
                f" ({self.info.duration_s:.2f} s)" if self.info.duration_s else ""
            )
            raise VideoError(
                f"{self.path}: decoding stopped after {self.decoded} frames (at {at}) of "
                f"{expected}: the file is truncated or corrupt"
            )


def read_frames(
    path: Path | str, fps: float, *, start_s: float = 0.0, end_s: float | None = None
) -> Iterator[SampledFrame]:
    """RGB frames of a file sampled at `fps` (see the module docstring for the rule).

    Raises `VideoError` at once for a missing or unreadable file, and during iteration
    when decoding stops before the end the container promises.
    """
    return iter(FrameReader(path, fps, start_s=start_s, end_s=end_s))
