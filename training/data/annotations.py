"""Action annotations of untrimmed videos, and the per-frame targets made from them.

Two formats:

- a CSV file with a header row `video,start_s,end_s,label` (other columns ignored), one
  row per action instance; `video` is a file name (`clip.mp4`) or its stem (`clip`);
- a THUMOS'14-style folder of per-class text files, `<Class>_val.txt` / `<Class>_test.txt`,
  each line `video_name start end` in seconds; the class is the file name before the
  suffix, and the suffix says the split (`_val` → train, `_test` → test, as the OAD
  literature trains on THUMOS validation and tests on THUMOS test). Files without such
  a suffix give the class from the whole stem and no split.

Class list: `Background` first (index 0), then the action names sorted; a class named
`Ambiguous` (THUMOS marks unclear instances so) goes last and becomes the dataset's
`ignore_index`. Row t of a video sampled at `fps` stands for time t / fps (the start of
its sampling slot, where its frame was taken; see runtime/video.py), and gets every class
whose segment [start, end) contains that time — several at once where segments of
different classes overlap (multi-hot; argmax picks the lower class index) — or
Background when none does.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runtime.errors import ConfigError
from runtime.oad_layout import rows_between

BACKGROUND, AMBIGUOUS = "Background", "Ambiguous"
VIDEO_EXTENSIONS = (
    ".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts",
)  # fmt: skip
CSV_COLUMNS = ("video", "start_s", "end_s", "label")
THUMOS_SUFFIXES = {"_val": "train", "_validation": "train", "_test": "test"}


def session_name(video: str) -> str:
    """`clip.mp4` → `clip`; a name without a video extension is already a session name."""
    path = Path(video.strip())
    return path.stem if path.suffix.lower() in VIDEO_EXTENSIONS else path.name


@dataclass(frozen=True)
class Segment:
    video: str  # session name (file stem)
    start_s: float
    end_s: float
    label: str


@dataclass(frozen=True)
class Annotations:
    source: Path
    segments: tuple[Segment, ...]
    # Split named by the annotation files themselves (THUMOS `_val` / `_test`), per video.
    split_hints: dict[str, str] = field(default_factory=dict)

    @property
    def videos(self) -> list[str]:
        return sorted({s.video for s in self.segments})

    def for_video(self, video: str) -> list[Segment]:
        return [s for s in self.segments if s.video == video]

    @property
    def class_names(self) -> list[str]:
        """Background, the actions sorted, then Ambiguous when the annotations use it."""
        labels = {s.label for s in self.segments}
        actions = sorted(labels - {AMBIGUOUS})
        return [BACKGROUND, *actions] + ([AMBIGUOUS] if AMBIGUOUS in labels else [])

    @property
    def ignore_index(self) -> int | None:
        names = self.class_names
        return names.index(AMBIGUOUS) if AMBIGUOUS in names else None


def load_annotations(path: Path | str) -> Annotations:
    """Read a CSV file or a THUMOS-style folder of per-class txt files (module docstring)."""
    path = Path(path)
    if path.is_dir():
        annotations = _read_thumos_folder(path)
    elif path.is_file():
        annotations = _read_csv(path)
    else:
        raise ConfigError(f"annotations {path} not found (expected a CSV file or a folder)")
    if not annotations.segments:
        raise ConfigError(f"annotations {path} hold no action segments")
    return annotations


def _segment(video: str, start: str, end: str, label: str, where: str) -> Segment:
    try:
        start_s, end_s = float(start), float(end)
    except ValueError:
        raise ConfigError(
            f"{where}: start and end must be seconds, got {start!r}, {end!r}"
        ) from None
    if not (math.isfinite(start_s) and math.isfinite(end_s)) or start_s < 0 or end_s <= start_s:
        raise ConfigError(f"{where}: need 0 <= start < end, got {start_s} and {end_s}")
    label = label.strip()
    if not label or not video.strip():
        raise ConfigError(f"{where}: empty video name or label")
    if label.lower() == BACKGROUND.lower():
        raise ConfigError(
            f"{where}: {BACKGROUND!r} is the class of unannotated time; annotate actions only"
        )
    if label.lower() == AMBIGUOUS.lower():
        label = AMBIGUOUS
    return Segment(session_name(video), start_s, end_s, label)


def _read_csv(path: Path) -> Annotations:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        header = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in CSV_COLUMNS if c not in header]
        if missing:
            raise ConfigError(
                f"{path}: CSV header is {header}, expected columns {list(CSV_COLUMNS)} "
                f"(missing {missing})"
            )
        reader.fieldnames = header
        segments = []
        for line, row in enumerate(reader, start=2):
            if not any((v or "").strip() for v in row.values()):
                continue
            segments.append(
                _segment(
                    row["video"] or "",
                    row["start_s"] or "",
                    row["end_s"] or "",
                    row["label"] or "",
                    f"{path}:{line}",
                )
            )
    return Annotations(path, tuple(segments))


def _class_and_split(stem: str) -> tuple[str, str | None]:
    for suffix, split in THUMOS_SUFFIXES.items():
        if stem.lower().endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)], split
    return stem, None


def _read_thumos_folder(folder: Path) -> Annotations:
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise ConfigError(f"annotation folder {folder} has no <Class>_val.txt / _test.txt files")
    segments: list[Segment] = []
    hints: dict[str, set[str]] = {}
    for file in files:
        label, split = _class_and_split(file.stem)
        for line, text in enumerate(file.read_text().splitlines(), start=1):
            parts = text.split()
            if not parts:
                continue
            if len(parts) != 3:
                raise ConfigError(
                    f"{file}:{line}: expected 'video_name start end', got {text.strip()!r}"
                )
            segment = _segment(parts[0], parts[1], parts[2], label, f"{file}:{line}")
            segments.append(segment)
            if split is not None:
                hints.setdefault(segment.video, set()).add(split)
    # A video named in both _val and _test files has no usable hint.
    split_hints = {video: next(iter(s)) for video, s in hints.items() if len(s) == 1}
    return Annotations(folder, tuple(segments), split_hints)


def frame_targets(
    segments: Iterable[Segment], rows: int, fps: float, class_names: list[str]
) -> np.ndarray:
    """[rows, classes] float32: row t gets the classes whose segments contain t / fps."""
    index = {name: i for i, name in enumerate(class_names)}
    targets = np.zeros((rows, len(class_names)), dtype=np.float32)
    for s in segments:
        if s.label not in index:
            raise ConfigError(f"label {s.label!r} is not one of the classes {class_names}")
        targets[rows_between(s.start_s, s.end_s, rows, fps), index[s.label]] = 1.0
    background = index[BACKGROUND]
    targets[targets.sum(axis=1) == 0, background] = 1.0
    return targets
