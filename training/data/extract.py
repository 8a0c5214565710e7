"""Videos + annotations → a feature dataset in the standard OAD layout.

    gad data extract VIDEOS --annotations annotations.csv --out DATA [--encoder ...] [--fps 4]

`--encoder blazepose` (or `pose-blazepose`) extracts body-pose rows (model/encoders.py).

writes

    DATA/rgb_<encoder>/<session>.npy    [rows, D] float32, a row per 1/fps s (runtime/video.py)
    DATA/target_perframe/<session>.npy  [rows, C] float32, Background at 0 (annotations.py)
    DATA/data_info.json                 the dataset entry, `encoder` = encoder.describe()
    DATA/rgb_<encoder>/extract.json     what each feature file was made from (for resuming)

Resumable: a video whose feature file exists, was made by the same encoder at the same
fps from the same file (size and modification time) is not decoded again. Targets are
cheap and always rebuilt from the current annotations (written only when they change), so
a corrected annotation file needs no re-encoding. Files are written atomically (a
temporary file, then a rename): an interrupted run leaves whole files only.

Videos to extract: the annotated ones, or those the split file names. Any that cannot be
used are skipped and reported with the reason (missing file, unreadable, no annotation,
too short); the others go on.

Split: `--split FILE` (JSON `{"train": [...], "test": [...]}`, names or file names), else
the split the annotation files name (THUMOS `_val` / `_test`), else `--test-fraction`
of the annotated videos, drawn with `--seed` over all of them (a video that fails to
decode does not move the others).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from runtime.errors import ConfigError
from runtime.oad_layout import (
    TARGET_DIR,
    atomic_save,
    atomic_text,
    data_info_entry,
    feature_dir_name,
)
from runtime.oad_layout import write_data_info as write_entry
from runtime.pose.encoder import is_pose_spec
from runtime.video import FrameReader, VideoError, probe
from training.data.annotations import (
    Annotations,
    frame_targets,
    load_annotations,
)
from training.data.sessions import assign_split, index_videos

logger = logging.getLogger(__name__)

MANIFEST = "extract.json"
MISSING, UNREADABLE, NO_ANNOTATION, TOO_SHORT = (
    "missing file",
    "unreadable",
    "no annotation",
    "too short",
)
AMBIGUOUS_FILE, NOT_IN_SPLIT = "several files", "not in split file"


class Encoder(Protocol):
    """What extraction needs of a frame encoder (model.encoders.FrameEncoder)."""

    name: str
    feature_dim: int

    def encode(self, frames: np.ndarray, batch_size: int = 16) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ExtractConfig:
    videos: Path
    annotations: Path
    out: Path
    encoder: str = "efficientnet-lite0"
    fps: float = 4.0
    split: Path | None = None
    test_fraction: float = 0.25
    seed: int = 0
    batch_size: int = 16
    dataset: str | None = None
    min_seconds: float = 1.0
    device: str = "cpu"
    # onnxruntime (the encoder's cached ONNX export: the service's very graph, 3-6x faster
    # on a CPU) or torch (PyTorch eager, e.g. on a GPU).
    runtime: str = "onnx"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.fps <= 0 or self.batch_size <= 0:
            raise ConfigError(f"need fps > 0 and batch_size > 0, got {self.fps}, {self.batch_size}")
        if not 0 <= self.test_fraction < 1:
            raise ConfigError(f"test_fraction must be in [0, 1), got {self.test_fraction}")
        if not Path(self.videos).is_dir():
            raise ConfigError(f"videos folder {self.videos} not found")


@dataclass
class ExtractResult:
    dataset: str
    out: Path
    feature_dir: str
    class_names: list[str]
    extracted: dict[str, int] = field(default_factory=dict)  # session → rows
    reused: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # reason → (name, why)
    train: list[str] = field(default_factory=list)
    test: list[str] = field(default_factory=list)
    targets_written: int = 0
    encode_seconds: float = 0.0

    def skip(self, reason: str, name: str, detail: str = "") -> None:
        self.skipped.setdefault(reason, []).append((name, detail))
        logger.debug("skip %s (%s): %s", name, reason, detail)

    @property
    def frames_per_second(self) -> float:
        rows = sum(self.extracted.values())
        return rows / self.encode_seconds if self.encode_seconds > 0 else 0.0

    def summary(self) -> list[str]:
        """Human-readable lines: what was extracted, reused and skipped, and why."""
        rows = sum(self.extracted.values())
        lines = [
            f"extracted {len(self.extracted)} videos ({rows} frames"
            + (f", {self.frames_per_second:.1f} frames/s" if rows else "")
            + f"), reused {len(self.reused)} ({sum(self.reused.values())} frames), "
            f"skipped {sum(len(v) for v in self.skipped.values())}",
        ]
        for reason, items in sorted(self.skipped.items()):
            lines.append(f"  skipped, {reason}: {len(items)}")
            for name, detail in items[:10]:
                lines.append(f"    {name}" + (f": {detail}" if detail else ""))
            if len(items) > 10:
                lines.append(f"    ... and {len(items) - 10} more")
        if not (self.train or self.test):
            lines.append(f"no dataset written to {self.out}")
            return lines
        lines.append(
            f"dataset {self.dataset} in {self.out}: {len(self.class_names)} classes, "
            f"train {len(self.train)} / test {len(self.test)} videos, "
            f"features {self.feature_dir}/, targets {TARGET_DIR}/ ({self.targets_written} updated)"
        )
        return lines


def _load_manifest(path: Path, encoder: dict[str, Any], fps: float) -> dict[str, Any]:
    """Per-video entries of an earlier run with the same encoder and fps (else none)."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        logger.warning("%s is not valid JSON; extracting everything again", path)
        return {}
    if data.get("encoder") != encoder or data.get("fps") != fps:
        logger.info("%s was made with another encoder or fps; extracting again", path)
        return {}
    return dict(data.get("videos", {}))


def _source_stamp(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"file": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _is_current(entry: dict[str, Any] | None, path: Path, feature: Path, dim: int) -> bool:
    if not entry or not feature.is_file():
        return False
    if {k: entry.get(k) for k in ("file", "size", "mtime_ns")} != _source_stamp(path):
        return False
    try:
        array = np.load(feature, mmap_mode="r")
    except (OSError, ValueError):
        return False
    return array.shape == (entry.get("rows"), dim)


def encode_video(
    path: Path, encoder: Encoder, fps: float, *, batch_size: int, bar: Any = None
) -> np.ndarray:
    """[rows, D] features of one video at `fps`; a repeated row reuses its frame's feature."""
    reader = FrameReader(path, fps)
    features: list[np.ndarray] = []
    batch: list[np.ndarray] = []
    source: list[int] = []  # row → index of its (unique) frame
    frames = 0
    for sample in reader:
        if not sample.repeated or not source:
            batch.append(sample.rgb)
            frames += 1
        source.append(frames - 1)
        if len(batch) == batch_size:
            features.append(encoder.encode(np.stack(batch), batch_size=batch_size))
            batch = []
        if bar is not None:
            bar.update()
    if batch:
        features.append(encoder.encode(np.stack(batch), batch_size=batch_size))
    if not source:
        raise VideoError(f"{path} gave no frames at {fps} fps")
    unique = np.concatenate(features).astype(np.float32, copy=False)
    if unique.shape != (frames, encoder.feature_dim):
        raise ConfigError(
            f"encoder returned {list(unique.shape)} for {frames} frames, expected "
            f"[{frames}, {encoder.feature_dim}]"
        )
    return unique[np.asarray(source)]


def plan(
    cfg: ExtractConfig, annotations: Annotations, wanted: list[str], result: ExtractResult
) -> list[tuple[str, Path, int]]:
    """(session, file, expected rows) of each usable video; the others go to `result.skip`."""
    files = index_videos(Path(cfg.videos))
    annotated = set(annotations.videos)
    for stem in sorted(set(files) - set(wanted)):
        if stem in annotated:
            result.skip(NOT_IN_SPLIT, files[stem][0].name, f"annotated, not in {cfg.split}")
        else:
            result.skip(NO_ANNOTATION, files[stem][0].name, "not in the annotations")
    todo = []
    for session in wanted:
        candidates = files.get(session, [])
        if not candidates:
            result.skip(MISSING, session, f"no video file {session}.* in {cfg.videos}")
            continue
        if len(candidates) > 1:
            result.skip(AMBIGUOUS_FILE, session, ", ".join(p.name for p in candidates))
            continue
        path = candidates[0]
        segments = annotations.for_video(session)
        if not segments:
            result.skip(NO_ANNOTATION, path.name, "named in the split file, not annotated")
            continue
        try:
            info = probe(path)
        except VideoError as exc:
            result.skip(UNREADABLE, path.name, str(exc))
            continue
        duration = info.duration_s
        first = min(s.start_s for s in segments)
        if duration is not None and duration < cfg.min_seconds:
            result.skip(TOO_SHORT, path.name, f"{duration:.2f} s < {cfg.min_seconds} s")
        elif duration is not None and first >= duration:
            result.skip(TOO_SHORT, path.name, f"{duration:.2f} s, first action at {first} s")
        else:
            todo.append((session, path, info.rows(cfg.fps) or 0))
    return todo


def extract_dataset(cfg: ExtractConfig, encoder: Encoder | None = None) -> ExtractResult:
    """Extract features and targets under `cfg.out` (see the module docstring)."""
    annotations = load_annotations(cfg.annotations)
    split = assign_split(
        annotations.videos,
        annotations,
        split_file=cfg.split,
        test_fraction=cfg.test_fraction,
        seed=cfg.seed,
    )
    wanted = sorted(split) if cfg.split is not None else annotations.videos
    name = cfg.dataset or Path(cfg.out).resolve().name
    result = ExtractResult(name, Path(cfg.out), "", annotations.class_names)
    todo = plan(cfg, annotations, wanted, result)
    if not todo:
        return result
    if encoder is None and (cfg.runtime == "onnx" or is_pose_spec(cfg.encoder)):
        # A pose encoder runs in onnxruntime whatever the runtime (it has no PyTorch form).
        from model.export.encoder import load_onnx_encoder

        encoder = load_onnx_encoder(cfg.encoder)
    elif encoder is None:
        from model.encoders import load_encoder

        encoder = load_encoder(cfg.encoder, device=cfg.device)
    description = encoder.describe()
    result.feature_dir = feature_dir = feature_dir_name(encoder.name)
    out_features, out_targets = Path(cfg.out) / feature_dir, Path(cfg.out) / TARGET_DIR
    out_features.mkdir(parents=True, exist_ok=True)
    out_targets.mkdir(parents=True, exist_ok=True)

    manifest_path = out_features / MANIFEST
    manifest = _load_manifest(manifest_path, description, cfg.fps)
    fresh = []
    for session, path, rows in todo:
        feature = out_features / f"{session}.npy"
        if _is_current(manifest.get(session), path, feature, encoder.feature_dim):
            result.reused[session] = int(manifest[session]["rows"])
        else:
            fresh.append((session, path, rows))

    bar = None
    if cfg.progress and fresh:
        from tqdm import tqdm

        total = sum(rows for _, _, rows in fresh)
        bar = tqdm(total=total, desc="extract", unit="frame", dynamic_ncols=True)
    try:
        for session, path, _ in fresh:
            if bar is not None:
                bar.set_postfix_str(session)
            start = time.perf_counter()
            try:
                features = encode_video(path, encoder, cfg.fps, batch_size=cfg.batch_size, bar=bar)
            except VideoError as exc:
                result.skip(UNREADABLE, path.name, str(exc))
                continue
            result.encode_seconds += time.perf_counter() - start
            atomic_save(out_features / f"{session}.npy", features)
            manifest[session] = {**_source_stamp(path), "rows": len(features)}
            atomic_text(
                manifest_path,
                json.dumps({"encoder": description, "fps": cfg.fps, "videos": manifest}, indent=1),
            )
            result.extracted[session] = len(features)
    finally:
        if bar is not None:
            bar.close()

    for session, rows in {**result.reused, **result.extracted}.items():
        targets = frame_targets(
            annotations.for_video(session), rows, cfg.fps, annotations.class_names
        )
        path = out_targets / f"{session}.npy"
        if path.is_file():
            try:
                if np.array_equal(np.load(path), targets):
                    continue
            except (OSError, ValueError):
                pass
        atomic_save(path, targets)
        result.targets_written += 1

    done = sorted({**result.reused, **result.extracted})
    result.train = [s for s in done if split.get(s) == "train"]
    result.test = [s for s in done if split.get(s) == "test"]
    if done:
        write_data_info(cfg, result, annotations, description)
    return result


def write_data_info(
    cfg: ExtractConfig, result: ExtractResult, annotations: Annotations, encoder: dict[str, Any]
) -> None:
    """Add (or replace) this dataset's entry in `out/data_info.json`, keeping the others."""
    entry = data_info_entry(
        class_names=result.class_names,
        fps=cfg.fps,
        feature_dir=result.feature_dir,
        train=result.train,
        test=result.test,
        encoder=encoder,
        ignore_index=annotations.ignore_index,
    )
    write_entry(Path(cfg.out), result.dataset, entry)
