"""Per-frame labels → segments (runs of one label). numpy only: evaluation and the
service's `/classify` merge segments with this one function."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Segment:
    """A run of one label: frames [start, end)."""

    label: int
    start: int  # first frame, inclusive
    end: int  # last frame, exclusive

    @property
    def length(self) -> int:
        return self.end - self.start


def check_labels(name: str, labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1:
        shape = "[" + ", ".join(str(n) for n in labels.shape) + "]"
        raise ValueError(f"{name} has shape {shape}: expected per-frame labels [frames]")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} has dtype {labels.dtype}: expected integer class indices")
    return labels


def to_segments(
    labels: np.ndarray,
    *,
    background_index: int | None = 0,
    ignore_index: int | None = None,
) -> list[Segment]:
    """Runs of equal consecutive per-frame labels [T], without background and ignore runs."""
    labels = check_labels("labels", labels)
    if not labels.size:
        return []
    starts = np.r_[0, np.flatnonzero(np.diff(labels)) + 1]
    ends = np.r_[starts[1:], labels.size]
    excluded = {background_index, ignore_index} - {None}
    return [
        Segment(label=int(labels[s]), start=int(s), end=int(e))
        for s, e in zip(starts, ends, strict=True)
        if int(labels[s]) not in excluded
    ]
