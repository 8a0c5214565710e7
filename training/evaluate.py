"""Offline evaluation: score every frame of every test video (stride 1, like the paper).

Scores are kept (softmax over the model's classes, put back in the data's class space with
a zero column for the ignored class) so metrics can be recomputed from the saved file
without the model. [CLS] models: the head's softmax, and the label is its argmax.

The generative classifier's label is its greedy decode — by default free and mapped to the
nearest label text by edit distance, the paper's generative baseline; `constrained` walks
the label trie instead. Its scores, for mAP and mcAP, are the softmax over classes of each
label text's teacher-forced log-likelihood (GADClassifier.label_log_likelihoods), so they
rank frames like the [CLS] models' scores do; frame accuracy and segment F1 come from the
decoded labels. (The authors store only the decoded labels and report accuracy.)

`evaluate_run` is `gad eval`: a checkpoint (or a saved scores file) and a dataset → the
metrics, metrics.md, a confusion matrix and timelines in the report folder.
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
    decoded: np.ndarray | None = None  # [T] data-space class decoded (generative)

    @property
    def predicted(self) -> np.ndarray:
        """[T] the class reported per frame: the decoded one, else the top score."""
        return self.scores.argmax(1) if self.decoded is None else self.decoded


def to_data_space(model_scores: np.ndarray, info: DataInfo) -> np.ndarray:
    """[T, C-1] model-class scores → [T, C] with a zero column at the ignore index."""
    if info.ignore_index is None:
        return model_scores
    return np.insert(model_scores, info.ignore_index, 0.0, axis=1)


def to_data_index(model_classes: np.ndarray, info: DataInfo) -> np.ndarray:
    """[T] model-class indices → data-class indices (past the ignore index: one more)."""
    if info.ignore_index is None:
        return model_classes
    return model_classes + (model_classes >= info.ignore_index)


def one_hot(classes: np.ndarray, num_classes: int) -> np.ndarray:
    out = np.zeros((len(classes), num_classes), dtype=np.float32)
    out[np.arange(len(classes)), classes] = 1.0
    return out


@torch.no_grad()
def score_windows(
    model: GADClassifier,
    features: torch.Tensor,
    mask: torch.Tensor,
    *,
    decodings: tuple[bool, ...] = (False,),
) -> tuple[np.ndarray, dict[bool, np.ndarray]]:
    """([B, C] class scores, {constrained: [B] decoded classes}) for a batch of windows.

    [CLS] models: the head's softmax in one pass, no decoded classes. `generative`: the
    softmax of each label's log-likelihood, and a greedy decode for each of `decodings`
    (False: free, True: constrained), all continuing one pass over the window.
    """
    if model.config.uses_cls:
        return torch.softmax(model.class_logits(features, mask), dim=-1).cpu().numpy(), {}
    read = model.prefill(features, mask)  # the window read once: scored, then decoded
    scores = torch.softmax(model.label_log_likelihoods(features, mask, prefilled=read), dim=-1)
    decoded = {
        flag: np.asarray(
            model.generate(features, mask, constrained=flag, prefilled=read).indices,
            dtype=np.int64,
        )
        for flag in decodings
    }
    return scores.cpu().numpy(), decoded


@torch.no_grad()
def label_windows(
    model: GADClassifier, features: torch.Tensor, mask: torch.Tensor, *, constrained: bool = False
) -> list[int]:
    """The class of each window, as a deployment computes it: the head's argmax after one
    pass, or `generative`'s greedy decode (no scores). What the latency tables time."""
    if model.config.uses_cls:
        return model.class_logits(features, mask).argmax(-1).tolist()
    return model.generate(features, mask, constrained=constrained).indices


def score_video(
    model: GADClassifier,
    video: FeatureVideo,
    spec: WindowSpec,
    *,
    batch_size: int,
    device: torch.device,
    decodings: tuple[bool, ...] = (False,),
) -> tuple[np.ndarray, dict[bool, np.ndarray]]:
    """([T, C_model] scores, {constrained: [T] decoded model classes}; no decodes for
    [CLS] models) for every frame of a video."""
    if model.config.is_streaming:  # the whole video as a live stream reads it, in chunks
        from model.streaming.runner import StreamingGAD

        rows = torch.from_numpy(np.array(video.features, np.float32))[None].to(device)
        with torch.no_grad():
            logits = StreamingGAD(model, model.config.stream_window).stream_logits(rows)
        return torch.softmax(logits[0].float(), -1).cpu().numpy(), {}
    scores: list[np.ndarray] = []
    decoded: dict[bool, list[np.ndarray]] = {}
    for start in range(0, len(video), batch_size):
        frames = np.arange(start, min(start + batch_size, len(video)))
        windows, mask = build_windows(video.features, frames, spec)
        batch_scores, batch_decoded = score_windows(
            model,
            torch.from_numpy(windows).to(device),
            torch.from_numpy(mask).long().to(device),
            decodings=decodings,
        )
        scores.append(batch_scores)
        for flag, classes in batch_decoded.items():
            decoded.setdefault(flag, []).append(classes)
    return np.concatenate(scores), {flag: np.concatenate(d) for flag, d in decoded.items()}


def predict(
    model: GADClassifier,
    videos: list[FeatureVideo],
    info: DataInfo,
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    constrained: bool = False,
    progress: bool = True,
) -> list[VideoScores]:
    """Scores (and, for `generative`, decoded classes) of every frame of `videos`.

    `constrained`: `generative` decodes among the labels only (the trie) instead of the
    paper's free decoding mapped to the nearest label; other kinds ignore it."""
    return predict_decodings(
        model,
        videos,
        info,
        decodings=(constrained,),
        batch_size=batch_size,
        device=device,
        progress=progress,
    )[constrained]


def predict_decodings(
    model: GADClassifier,
    videos: list[FeatureVideo],
    info: DataInfo,
    *,
    decodings: tuple[bool, ...] = (False, True),
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> dict[bool, list[VideoScores]]:
    """`predict` for each of `decodings` (False: free, True: constrained) in one pass over
    the videos: the scores are computed once and shared, each decoding runs its own greedy
    decode (`generative`; other kinds give the same results under every flag)."""
    model.eval().to(device)
    spec = model.config.window
    results: dict[bool, list[VideoScores]] = {flag: [] for flag in decodings}
    for video in tqdm(videos, desc=f"eval {model.config.kind}", unit="video", disable=not progress):
        scores, decoded = score_video(
            model,
            video,
            spec,
            batch_size=batch_size,
            device=torch.device(device),
            decodings=decodings,
        )
        data_scores, targets = to_data_space(scores, info), np.asarray(video.targets)
        for flag in decodings:
            classes = decoded.get(flag)
            results[flag].append(
                VideoScores(
                    video.session,
                    data_scores,
                    targets,
                    None if classes is None else to_data_index(classes, info),
                )
            )
    return results


def compute_metrics(results: list[VideoScores], info: DataInfo) -> dict[str, Any]:
    """mAP (and mcAP) from the scores; frame accuracy and segment F1 from the class
    reported per frame (`VideoScores.predicted`); over all videos pooled."""
    scores = np.concatenate([r.scores for r in results])
    targets = np.concatenate([r.targets for r in results])
    predicted = one_hot(np.concatenate([r.predicted for r in results]), scores.shape[1])
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
        [r.predicted for r in results],
        background_index=info.background_index,
        ignore_index=info.ignore_index,
    )
    return {
        "map": ap.map,
        "cmap": cap.map,
        "frame_accuracy": frame_accuracy(targets, predicted, ignore_index=info.ignore_index),
        "segment_f1": {f"{k:g}": v for k, v in f1.items()},
        "per_class_ap": ap.per_class_ap,
        "skipped": ap.skipped,
        "frames": ap.frames,
        "videos": len(results),
    }


def pooled_labels(results: list[VideoScores], info: DataInfo) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) class per frame over all videos, ignored frames left out."""
    truth = np.concatenate([r.targets.argmax(1) for r in results])
    predicted = np.concatenate([r.predicted for r in results])
    keep = truth != info.ignore_index if info.ignore_index is not None else slice(None)
    return truth[keep], predicted[keep]


def save_scores(
    path: Path, results: list[VideoScores], info: DataInfo, *, decoding: str | None = None
) -> None:
    """npz with `scores/<video>`, `targets/<video>` ([frames, classes]), `class_names`;
    for a generative run also `decoded/<video>` ([frames] class index) and `decoding`."""
    arrays: dict[str, np.ndarray] = {"class_names": np.asarray(info.class_names)}
    if decoding is not None:
        arrays["decoding"] = np.asarray(decoding)
    for r in results:
        arrays[f"scores/{r.session}"] = r.scores.astype(np.float32)
        arrays[f"targets/{r.session}"] = r.targets.astype(np.float32)
        if r.decoded is not None:
            arrays[f"decoded/{r.session}"] = r.decoded.astype(np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def load_scores(path: Path) -> tuple[list[VideoScores], list[str]]:
    """What save_scores wrote (files without `decoded/` read as before: argmax labels)."""
    with np.load(path) as data:
        names = [str(n) for n in data["class_names"]]
        sessions = sorted(k.split("/", 1)[1] for k in data.files if k.startswith("scores/"))
        return [
            VideoScores(
                s,
                data[f"scores/{s}"],
                data[f"targets/{s}"],
                data[f"decoded/{s}"] if f"decoded/{s}" in data.files else None,
            )
            for s in sessions
        ], names


def scores_decoding(path: Path) -> str | None:
    """The generative decoding a scores file was made with (None: not a generative run)."""
    with np.load(path) as data:
        return str(data["decoding"]) if "decoding" in data.files else None


def window_latency_ms(
    models: dict[str, GADClassifier],
    video: FeatureVideo,
    *,
    rounds: int = 3,
    repeats: int = 10,
    constrained: frozenset[str] = frozenset(),
) -> dict[str, float]:
    """Median ms per frame label (batch 1, the last frame's window) for each model.

    One forward pass for [CLS] models, a full greedy decode for `generative` (free, or
    constrained for the names in `constrained`); `label_windows` is what is timed. Models
    are timed side by side, round-robin after a warm-up, so they share the machine's state.
    """
    inputs = {}
    for name, model in models.items():
        spec = model.config.window
        windows, mask = build_windows(video.features, [len(video) - 1], spec)
        inputs[name] = (torch.from_numpy(windows), torch.from_numpy(mask).long())
        for _ in range(3):  # warm-up
            label_windows(model, *inputs[name], constrained=name in constrained)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            for _ in range(repeats):
                tick = time.perf_counter()
                label_windows(model, *inputs[name], constrained=name in constrained)
                times[name].append((time.perf_counter() - tick) * 1e3)
    return {name: statistics.median(values) for name, values in times.items()}


DECODINGS = {
    "free": "free greedy decoding, the text mapped to the nearest label by edit distance "
    "(the paper's generative baseline)",
    "constrained": "greedy decoding constrained to the labels by a trie (stronger than the "
    "paper's generative baseline)",
}


def decoding_note(decoding: str) -> str:
    """How a generative run was decoded, for its report (no final stop)."""
    return f"Generative classifier: {DECODINGS[decoding]}"


def write_metrics(out_dir: Path, metrics: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
