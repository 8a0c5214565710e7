"""Example labels: what a user may name an action, and each row's label from a clip's times.

A label is 1-48 characters: letters and digits (any script), spaces and `' . , ( ) + & / -`,
starting with a letter or digit; it is kept lower-cased with runs of spaces made one
("Raise  Hand" → "raise hand", as the demo's classes are written). "background", "nothing"
and "none" all name the background class (a moment with no action of interest); "ambiguous"
is reserved (the mocap data's ignored class).

Rows and times: row t of a clip at `fps` stands for time t / fps (runtime/oad_layout.py, the
rule `gad data extract` labels rows by); a segment [start, end) labels the rows it covers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from runtime.oad_layout import rows_between
from service.errors import UnusableInput

MAX_LABEL = 48
LABEL = re.compile(rf"[^\W_][\w '.,()+&/-]{{0,{MAX_LABEL - 1}}}")
BACKGROUND_NAMES = frozenset({"background", "nothing", "none"})
RESERVED = frozenset({"ambiguous"})
OUTSIDE = ("background", "drop")  # what rows outside the labelled time become


def check_label(text: object, background: str) -> str:
    """The label as kept (lower case, single spaces), `background` for a background name;
    UnusableInput saying which rule a bad label breaks."""
    if not isinstance(text, str) or not text.strip():
        raise UnusableInput("label: give the action's name, e.g. label=wave (or 'background')")
    label = " ".join(text.split()).lower()
    if label in BACKGROUND_NAMES or label == background.lower():
        return background
    if label in RESERVED:
        raise UnusableInput(f"label {label!r} is reserved: pick another name")
    if len(label) > MAX_LABEL:
        raise UnusableInput(f"label is {len(label)} characters, at most {MAX_LABEL}")
    if not LABEL.fullmatch(label):
        bad = sorted({c for c in label if not re.fullmatch(r"[\w '.,()+&/-]", c) or c == "_"})
        shown = "".join(bad) or label[:1]
        raise UnusableInput(
            f"label {label[:MAX_LABEL]!r} has characters a label cannot hold ({shown!r}): "
            "use letters, digits, spaces and ' . , ( ) + & / -, starting with a letter or digit"
        )
    return label


@dataclass(frozen=True)
class TimeSegment:
    label: str
    start: float  # seconds
    end: float


def seconds(value: object, name: str) -> float | None:
    """A time in seconds from a query/form/JSON value (None: not given)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise UnusableInput(f"{name} must be seconds (a number), got {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise UnusableInput(f"{name} must be seconds (a number), got {str(value)[:20]!r}") from None
    if not math.isfinite(number) or number < 0:
        raise UnusableInput(f"{name} must be a finite number of seconds >= 0, got {value}")
    return number


def one_segment(label: str, start: float | None, end: float | None) -> TimeSegment:
    segment = TimeSegment(label, start or 0.0, math.inf if end is None else end)
    if segment.end <= segment.start:
        raise UnusableInput(f"need start < end, got start {segment.start:g}, end {segment.end:g}")
    return segment


def parse_segments(data: object, background: str) -> list[TimeSegment]:
    """`[{"label": L, "start": S, "end": E}, ...]` (JSON, already parsed) → segments."""
    if not isinstance(data, list) or not data:
        raise UnusableInput(
            'segments must be a non-empty JSON list: [{"label": "wave", "start": 1.0, "end": 3.5}]'
        )
    if len(data) > 1000:
        raise UnusableInput(f"{len(data)} segments: at most 1000 per clip")
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise UnusableInput(f"segments[{i}] must be an object with label, start and end")
        label = check_label(item.get("label"), background)
        start = seconds(item.get("start"), f"segments[{i}].start")
        end = seconds(item.get("end"), f"segments[{i}].end")
        if start is None or end is None:
            raise UnusableInput(f"segments[{i}] needs both start and end (seconds)")
        out.append(one_segment(label, start, end))
    return out


def row_labels(
    rows: int, fps: float, segments: Sequence[TimeSegment], background: str, outside: str
) -> tuple[slice, list[str]]:
    """Which rows an example keeps and each one's label: the rows the segments cover get
    their label (a later segment wins where two overlap), the others `background`; with
    outside="drop" only the rows from the first segment's start to the last one's end are
    kept. UnusableInput when the segments cover no row of the clip."""
    duration = rows / fps
    labels = np.full(rows, -1, np.int64)
    for i, segment in enumerate(segments):
        labels[rows_between(segment.start, segment.end, rows, fps)] = i
    covered = np.flatnonzero(labels >= 0)
    if not len(covered):
        first = min(s.start for s in segments)
        raise UnusableInput(
            f"the labelled time covers no frame: the clip is {duration:.2f} s long "
            f"({rows} frames at {fps:g} fps), the label starts at {first:g} s"
        )
    keep = (
        slice(0, rows) if outside == "background" else slice(int(covered[0]), int(covered[-1]) + 1)
    )
    names = [background if i < 0 else segments[i].label for i in labels[keep]]
    return keep, names


def runs(labels: Sequence[str]) -> list[dict[str, Any]]:
    """Per-row labels → runs `{label, start_row, end_row}` (end one past the last row)."""
    out: list[dict[str, Any]] = []
    for row, label in enumerate(labels):
        if out and out[-1]["label"] == label:
            out[-1]["end_row"] = row + 1
        else:
            out.append({"label": label, "start_row": row, "end_row": row + 1})
    return out


def expand(segments: Sequence[dict[str, Any]]) -> list[str]:
    """Runs (as `runs` makes them) → per-row labels."""
    labels: list[str] = []
    for run in segments:
        labels += [str(run["label"])] * (int(run["end_row"]) - int(run["start_row"]))
    return labels
