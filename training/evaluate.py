"""Offline evaluation: score every frame of every test video (stride 1, like the paper).

Scores are kept (softmax over the model's classes, put back in the data's class space with
a zero column for the ignored class) so metrics can be recomputed from the saved file
without the model. The generative classifier has no scores, only decoded labels: its
"scores" are one-hot, as in the authors' evaluation.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from model.gad import GADClassifier
from runtime.windowing import WindowSpec, build_windows
from training.data_info import DataInfo
from training.dataset import FeatureVideo
from training.metrics import frame_accuracy, per_frame_ap, segment_f1


@dataclass
class VideoScores:
    session: str
    scores: np.ndarray  # [T, C] data class space
    targets: np.ndarray  # [T, C]


def to_data_space(model_scores: np.ndarray, info: DataInfo) -> np.ndarray:
    """[T, C-1] model-class scores → [T, C] with a zero column at the ignore index."""
    if info.ignore_index is None:
        return model_scores
    return np.insert(model_scores, info.ignore_index, 0.0, axis=1)


@torch.no_grad()
def score_windows(
    model: GADClassifier, features: torch.Tensor, mask: torch.Tensor, *, constrained: bool = True
) -> np.ndarray:
    """[B, C] class scores for a batch of windows (one pass; decode for `generative`)."""
    if model.config.uses_cls:
        return torch.softmax(model.class_logits(features, mask), dim=-1).cpu().numpy()
    indices = model.generate(features, mask, constrained=constrained).indices
    onehot = np.zeros((len(indices), model.config.num_classes), dtype=np.float32)
    onehot[np.arange(len(indices)), indices] = 1.0
    return onehot


def score_video(
    model: GADClassifier,
    video: FeatureVideo,
    spec: WindowSpec,
    *,
    batch_size: int,
    device: torch.device,
    constrained: bool = True,
) -> np.ndarray:
    """[T, C_model] scores for every frame of one video."""
    out = []
    for start in range(0, len(video), batch_size):
        frames = np.arange(start, min(start + batch_size, len(video)))
        windows, mask = build_windows(video.features, frames, spec)
        out.append(
            score_windows(
                model,
                torch.from_numpy(windows).to(device),
                torch.from_numpy(mask).long().to(device),
                constrained=constrained,
            )
        )
    return np.concatenate(out)


def predict(
    model: GADClassifier,
    videos: list[FeatureVideo],
    info: DataInfo,
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    constrained: bool = True,
    progress: bool = True,
) -> list[VideoScores]:
    model.eval().to(device)
    spec = model.config.window
    results = []
    for video in tqdm(videos, desc=f"eval {model.config.kind}", unit="video", disable=not progress):
        scores = score_video(
            model,
            video,
            spec,
            batch_size=batch_size,
            device=torch.device(device),
            constrained=constrained,
        )
        results.append(
            VideoScores(video.session, to_data_space(scores, info), np.asarray(video.targets))
        )
    return results


def compute_metrics(results: list[VideoScores], info: DataInfo) -> dict[str, Any]:
    """mAP (and mcAP), frame accuracy and segment F1 over all videos pooled."""
    scores = np.concatenate([r.scores for r in results])
    targets = np.concatenate([r.targets for r in results])
    names = list(info.class_names)
    ap = per_frame_ap(
        targets,
        scores,
        names,
        ignore_index=info.ignore_index,
        background_index=info.background_index,
    )
    cap = per_frame_ap(
        targets,
        scores,
        names,
        ignore_index=info.ignore_index,
        background_index=info.background_index,
        calibrated=True,
    )
    f1 = segment_f1(
        [r.targets.argmax(1) for r in results],
        [r.scores.argmax(1) for r in results],
        background_index=info.background_index,
        ignore_index=info.ignore_index,
    )
    return {
        "map": ap.map,
        "cmap": cap.map,
        "frame_accuracy": frame_accuracy(targets, scores, ignore_index=info.ignore_index),
        "segment_f1": {f"{k:g}": v for k, v in f1.items()},
        "per_class_ap": ap.per_class_ap,
        "skipped": ap.skipped,
        "frames": ap.frames,
        "videos": len(results),
    }


def pooled_labels(results: list[VideoScores], info: DataInfo) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) class per frame over all videos, ignored frames left out."""
    truth = np.concatenate([r.targets.argmax(1) for r in results])
    predicted = np.concatenate([r.scores.argmax(1) for r in results])
    keep = truth != info.ignore_index if info.ignore_index is not None else slice(None)
    return truth[keep], predicted[keep]


def save_scores(path: Path, results: list[VideoScores], info: DataInfo) -> None:
    """npz with `scores/<video>`, `targets/<video>` ([frames, classes]) and `class_names`."""
    arrays: dict[str, np.ndarray] = {"class_names": np.asarray(info.class_names)}
    for r in results:
        arrays[f"scores/{r.session}"] = r.scores.astype(np.float32)
        arrays[f"targets/{r.session}"] = r.targets.astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def load_scores(path: Path) -> tuple[list[VideoScores], list[str]]:
    with np.load(path) as data:
        names = [str(n) for n in data["class_names"]]
        sessions = sorted(k.split("/", 1)[1] for k in data.files if k.startswith("scores/"))
        return [VideoScores(s, data[f"scores/{s}"], data[f"targets/{s}"]) for s in sessions], names


def window_latency_ms(
    models: dict[str, GADClassifier],
    video: FeatureVideo,
    *,
    rounds: int = 3,
    repeats: int = 10,
    constrained: bool = True,
) -> dict[str, float]:
    """Median ms per frame label (batch 1, the last frame's window) for each model.

    One forward pass for [CLS] models, a full greedy decode for `generative`. Models are
    timed side by side, round-robin after a warm-up, so they share the machine's state.
    """
    inputs = {}
    for name, model in models.items():
        spec = model.config.window
        windows, mask = build_windows(video.features, [len(video) - 1], spec)
        inputs[name] = (torch.from_numpy(windows), torch.from_numpy(mask).long())
        for _ in range(3):  # warm-up
            score_windows(model, *inputs[name], constrained=constrained)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            for _ in range(repeats):
                tick = time.perf_counter()
                score_windows(model, *inputs[name], constrained=constrained)
                times[name].append((time.perf_counter() - tick) * 1e3)
    return {name: statistics.median(values) for name, values in times.items()}


def write_metrics(out_dir: Path, metrics: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
