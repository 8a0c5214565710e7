"""The one window-building function: frame t's model input from the rows seen so far.

Training, offline evaluation, `/classify` and live streams all call `build_window`, so a
live stream and an offline evaluation of the same video see identical windows.

A window is `long_frames` rows of long memory (every `long_stride`-th row before the short
window) followed by the `short_frames` rows ending at t:

    rows:    ... [ long memory, stride s ] [ short window ] t
    window:  [ L rows                    | S rows          ]   (L + S rows, oldest first)

Near the start of a video the missing rows are left padding (mask 0, zero features),
which the model ignores. numpy only: the service imports this without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WindowSpec:
    long_frames: int
    short_frames: int
    long_stride: int = 1

    def __post_init__(self) -> None:
        if self.short_frames <= 0 or self.long_frames < 0 or self.long_stride <= 0:
            raise ValueError(
                f"window needs short_frames > 0, long_frames >= 0, long_stride > 0; got "
                f"{self.short_frames}/{self.long_frames}/{self.long_stride}"
            )

    @property
    def size(self) -> int:
        """Rows in a window (the model's sequence of frame tokens)."""
        return self.long_frames + self.short_frames

    @property
    def span(self) -> int:
        """How many of the latest rows a window reaches back over (what a stream keeps)."""
        return self.short_frames + self.long_frames * self.long_stride


def window_indices(t: int, spec: WindowSpec) -> np.ndarray:
    """Row indices of frame t's window, oldest first; -1 marks left padding."""
    if t < 0:
        raise ValueError(f"frame index must be >= 0, got {t}")
    short = np.arange(t - spec.short_frames + 1, t + 1)
    last_long = t - spec.short_frames
    long = last_long - spec.long_stride * np.arange(spec.long_frames - 1, -1, -1)
    indices = np.concatenate([long, short])
    return np.where(indices >= 0, indices, -1)


def build_window(rows: np.ndarray, t: int, spec: WindowSpec) -> tuple[np.ndarray, np.ndarray]:
    """(features [L+S, D] float32, mask [L+S] uint8) for frame t of `rows` [N, D].

    `rows` may be a whole video or only its latest `spec.span` rows (a stream's cache):
    t indexes into `rows` either way.
    """
    if rows.ndim != 2:
        raise ValueError(f"rows must be [frames, features], got shape {list(rows.shape)}")
    if t >= len(rows):
        raise ValueError(f"frame {t} is beyond the {len(rows)} rows seen so far")
    indices = window_indices(t, spec)
    valid = indices >= 0
    window = np.zeros((spec.size, rows.shape[1]), dtype=np.float32)
    window[valid] = rows[indices[valid]]
    return window, valid.astype(np.uint8)


def build_windows(
    rows: np.ndarray, frames: np.ndarray | list[int], spec: WindowSpec
) -> tuple[np.ndarray, np.ndarray]:
    """A batch of windows: (features [B, L+S, D], mask [B, L+S]) for each t in `frames`."""
    pairs = [build_window(rows, int(t), spec) for t in frames]
    if not pairs:
        return (
            np.zeros((0, spec.size, rows.shape[1]), np.float32),
            np.zeros((0, spec.size), np.uint8),
        )
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


# --- whole clips (the offline step / task / next-step models) ----------------------------


def clip_indices(
    start: int, end: int, max_frames: int, *, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Rows of the span [start, end) a clip model reads: all of them when there are at
    most `max_frames`, else `max_frames` rows spread uniformly — the middle row of each of
    `max_frames` equal bins, or (training, `rng` given) a random row of each bin."""
    if max_frames <= 0:
        raise ValueError(f"max_frames must be positive, got {max_frames}")
    if not 0 <= start < end:
        raise ValueError(f"a clip needs 0 <= start < end, got [{start}, {end})")
    length = end - start
    if length <= max_frames:
        return np.arange(start, end)
    edges = np.arange(max_frames + 1) * length / max_frames
    if rng is None:
        offsets = (edges[:-1] + edges[1:]) / 2
    else:
        offsets = edges[:-1] + rng.random(max_frames) * (edges[1:] - edges[:-1])
    picked = np.minimum(np.floor(offsets).astype(np.int64), length - 1)
    return start + picked


def build_clip(
    rows: np.ndarray,
    max_frames: int,
    *,
    start: int = 0,
    end: int | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(features [max_frames, D] float32, mask [max_frames] uint8) for rows[start:end],
    uniformly subsampled by `clip_indices` and left-padded like a window."""
    if rows.ndim != 2:
        raise ValueError(f"rows must be [frames, features], got shape {list(rows.shape)}")
    end = len(rows) if end is None else end
    if end > len(rows):
        raise ValueError(f"clip end {end} is beyond the {len(rows)} rows")
    picked = clip_indices(start, end, max_frames, rng=rng)
    clip = np.zeros((max_frames, rows.shape[1]), dtype=np.float32)
    mask = np.zeros(max_frames, dtype=np.uint8)
    clip[max_frames - len(picked) :] = rows[picked]
    mask[max_frames - len(picked) :] = 1
    return clip, mask
