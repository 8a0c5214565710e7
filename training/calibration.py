"""`gad calibrate`: fit a package's temperature on held-out frames and record it in its
manifest (runtime/calibration.py fits, runtime/manifest/calibration.py holds it).

    gad calibrate models/demo-pose --data data/mocap-val --split test

The frames are a feature dataset's split in the standard OAD layout (training/dataset.py),
labelled per frame; frames of the ignored class (Ambiguous) are left out. The package's
own graphs score them as a stream or `/classify` would — head.onnx over each frame's window
(runtime/windowing.py), or a streaming package's step.onnx over each video — so the fit is
on what is served. Torch-free: the rows and the graphs are numpy and onnxruntime.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.calibration import CONFIDENT, Fit, Scores, calibrate
from runtime.engine import OnnxEngine
from runtime.errors import ConfigError
from runtime.manifest import (
    MANIFEST_FILE,
    CalibrationSection,
    Manifest,
    ModelPackage,
    read_package,
)
from runtime.stepping import StepEngine
from runtime.windowing import build_windows
from training.data_info import DataInfo, load_data_info
from training.dataset import load_video

BATCH = 256  # windows per head.onnx call


@dataclass(frozen=True)
class HeldOut:
    """The package's logits on a dataset split's labelled frames: [N, C] and labels [N]
    (model class indices), with each frame's video (`videos` [N], an index into
    `sessions`)."""

    logits: np.ndarray
    labels: np.ndarray
    videos: np.ndarray
    sessions: tuple[str, ...]


def package_logits(
    package: ModelPackage, rows: np.ndarray, engine: OnnxEngine | StepEngine
) -> np.ndarray:
    """One video's per-frame logits [T, C] by the package's own graph: `engine` an
    OnnxEngine (each frame's window) or a StepEngine (the stream from its start)."""
    if isinstance(engine, StepEngine):
        return engine.replay(np.asarray(rows, np.float32))[1]
    out = [np.zeros((0, len(package.classes)), np.float32)]
    for at in range(0, len(rows), BATCH):
        index = np.arange(at, min(at + BATCH, len(rows)))
        out.append(engine.logits(*build_windows(np.asarray(rows), index, package.window)))
    return np.concatenate(out)


def held_out(
    package: ModelPackage,
    data: Path,
    split: str = "test",
    *,
    dataset: str | None = None,
    limit: int | None = None,
) -> HeldOut:
    """`package`'s logits on `split` of the dataset at `data` (its first `limit` videos)."""
    info = load_data_info(Path(data), dataset)
    check_classes(package, info)
    sessions = info.sessions(split)[:limit]
    if not sessions:
        raise ConfigError(f"dataset {info.name} has no {split} videos to calibrate on")
    engine: OnnxEngine | StepEngine
    if package.is_streaming:
        engine = StepEngine.load(package, providers=("cpu",))
    else:
        engine = OnnxEngine.load(package, providers=("cpu",))
    logits, labels, videos = [], [], []
    for i, session in enumerate(sessions):
        video = load_video(info, session)
        keep = np.ones(len(video), bool)
        if info.ignore_index is not None:
            keep = video.labels != info.ignore_index
        scores = package_logits(package, np.asarray(video.features, np.float32), engine)
        logits.append(scores[keep])
        labels.append(np.array([info.to_model_index(int(y)) for y in video.labels[keep]]))
        videos.append(np.full(int(keep.sum()), i))
    return HeldOut(
        np.concatenate(logits).astype(np.float64),
        np.concatenate(labels).astype(np.int64),
        np.concatenate(videos),
        tuple(sessions),
    )


def check_classes(package: ModelPackage, info: DataInfo) -> None:
    if tuple(info.model_class_names) != tuple(package.classes):
        raise ConfigError(
            f"dataset {info.name}'s classes {list(info.model_class_names)} are not the "
            f"package's {list(package.classes)}: calibrate on data labelled as it was trained"
        )


def section(fit: Fit, fitted_on: str) -> CalibrationSection:
    """The manifest's record of `fit`."""
    return CalibrationSection(
        temperature=round(fit.temperature, 4),
        fitted_on=fitted_on,
        frames=fit.frames,
        optimum=round(fit.optimum, 4),
        min_temperature=fit.min_temperature,
        threshold=CONFIDENT,
        before=score_json(fit.before),
        after=score_json(fit.after),
    )


def score_json(scores: Scores) -> dict[str, float]:
    return {
        "nll": round(scores.nll, 4),
        "ece": round(scores.ece, 4),
        "confident": round(scores.confidence.confident, 4),
        "confident_wrong": round(scores.confidence.confident_wrong, 4),
    }


def write_calibration(package: ModelPackage, calibration: CalibrationSection | None) -> Path:
    """Rewrite the package's manifest.json with `calibration` (None: removed), atomically;
    every other key as it was. The graphs and their digests are untouched."""
    path = package.folder / MANIFEST_FILE
    data = json.loads(path.read_text())
    data.pop("calibration", None)
    if calibration is not None:
        data["calibration"] = calibration.to_json()
    manifest = Manifest.from_json(data, source=path)  # checked before it replaces the file
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(manifest.to_json(), indent=2) + "\n")
    tmp.replace(path)
    return path


def calibrate_package(
    package_dir: Path,
    data: Path,
    split: str = "test",
    *,
    dataset: str | None = None,
    limit: int | None = None,
    min_temperature: float | None = None,
    write: bool = True,
) -> tuple[ModelPackage, Fit, CalibrationSection]:
    """Fit the temperature of the package at `package_dir` on `split` of `data`, from its
    uncalibrated logits (a calibration already there is replaced, not compounded), no
    lower than `min_temperature`, and record it in the manifest unless `write` is False."""
    package = read_package(Path(package_dir))
    frames = held_out(package, data, split, dataset=dataset, limit=limit)
    fit = calibrate(frames.logits, frames.labels, min_temperature=min_temperature)
    record = section(fit, f"{Path(data).name} {split} split ({len(frames.sessions)} videos)")
    if write:
        write_calibration(package, record)
        package = read_package(package.folder)
    return package, fit, record
