"""Evaluation of clip models: top-1 / top-5 accuracy for step recognition, task
recognition and next-step forecasting on a split, and per-clip latency.

The generative classifier has no scores, only its decoded answer (one-hot here, as for
the per-frame model), so its top-5 is not defined and is reported as None.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import top_k_accuracy_score
from tqdm.auto import tqdm

from model.checkpoint import load_checkpoint
from model.clip import QUESTIONS, TASK, ClipClassifier
from runtime.errors import ConfigError
from training.clips import (
    ClipSamples,
    ClipVideo,
    collate_clips,
    load_clip_videos,
    open_clip_source,
)


@dataclass
class QuestionScores:
    scores: np.ndarray  # [N, classes] softmax (one-hot for `generative`)
    labels: np.ndarray  # [N]


@torch.no_grad()
def score_questions(
    model: ClipClassifier,
    features: torch.Tensor,
    mask: torch.Tensor,
    question: int,
    *,
    constrained: bool = True,
) -> np.ndarray:
    """[B, classes] scores for clips all asked `question` (one pass, or a decode)."""
    if model.config.uses_cls:
        questions = torch.full((len(features),), question, device=features.device)
        steps, tasks = model.question_logits(features, mask, questions)
        return torch.softmax(tasks if question == TASK else steps, dim=-1).cpu().numpy()
    generation = model.generate_clip(features, mask, question, constrained=constrained)
    width = len(model.task_names) if question == TASK else model.config.num_classes
    onehot = np.zeros((len(features), width), dtype=np.float32)
    onehot[np.arange(len(features)), generation.indices] = 1.0
    return onehot


def predict_clips(
    model: ClipClassifier,
    videos: list[ClipVideo],
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    constrained: bool = True,
    progress: bool = True,
) -> dict[str, QuestionScores]:
    """Scores of every step, task and next-step clip of `videos`, per question."""
    model.eval().to(device)
    results = {}
    for question, name in enumerate(QUESTIONS):
        items = ClipSamples(videos, model.config.clip_frames, questions=(question,))
        scores, labels = [], []
        for start in tqdm(
            range(0, len(items), batch_size),
            desc=f"eval {model.config.kind} {name}",
            unit="batch",
            disable=not progress,
        ):
            batch = collate_clips(
                [items[i] for i in range(start, min(start + batch_size, len(items)))]
            )
            scores.append(
                score_questions(
                    model,
                    batch["features"].to(device),
                    batch["mask"].to(device),
                    question,
                    constrained=constrained,
                )
            )
            labels.append(batch["labels"].numpy())
        results[name] = QuestionScores(np.concatenate(scores), np.concatenate(labels))
    return results


def evaluate_clips(
    checkpoint: Path,
    data: Path,
    *,
    split: str = "test",
    annotations: Path | None = None,
    fps: float | None = None,
    dataset: str | None = None,
    limit_videos: int | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    constrained: bool = True,
) -> tuple[dict[str, Any], str]:
    """A clip checkpoint on `split` of the clip dataset at `data`: (clip_metrics(), their
    Markdown table). `gad eval` of a clip model (training/evaluate.py writes the report)."""
    source = open_clip_source(data, annotations=annotations, fps=fps, dataset=dataset)
    videos = load_clip_videos(source, split, limit=limit_videos)
    model = load_checkpoint(checkpoint, expect_feature_dim=int(videos[0].features.shape[1]))
    if model.config.task_names != source.annotations.task_names:
        raise ConfigError(
            f"{checkpoint} was trained on tasks {list(model.config.task_names)}, "
            f"{source.annotations.path} has {list(source.annotations.task_names)}"
        )
    results = predict_clips(
        model, videos, batch_size=batch_size, device=device, constrained=constrained
    )
    metrics = clip_metrics(results, generative=model.config.kind == "generative")
    title = f"{source.name} {split}: {model.config.kind} on {model.config.backbone}"
    return metrics, clip_metrics_markdown(metrics, title=title)


def clip_metrics(results: dict[str, QuestionScores], *, generative: bool) -> dict[str, Any]:
    """{question: {"top1", "top5" (None for generative), "clips"}}."""
    metrics: dict[str, Any] = {}
    for name, r in results.items():
        classes = np.arange(r.scores.shape[1])
        top1 = float((r.scores.argmax(1) == r.labels).mean())
        top5 = None  # undefined without scores, trivial with 5 classes or fewer
        if not generative and len(classes) > 5:
            top5 = float(top_k_accuracy_score(r.labels, r.scores, k=5, labels=classes))
        metrics[name] = {"top1": top1, "top5": top5, "clips": len(r.labels)}
    return metrics


def clip_metrics_markdown(metrics: dict[str, Any], *, title: str) -> str:
    lines = [f"### {title}", "", "| task | clips | top-1 % | top-5 % |", "|---|---:|---:|---:|"]
    for name in QUESTIONS:
        m = metrics[name]
        top5 = "—" if m["top5"] is None else f"{100 * m['top5']:.1f}"
        lines.append(f"| {name} | {m['clips']} | {100 * m['top1']:.1f} | {top5} |")
    return "\n".join(lines)


def clip_latency_ms(
    models: dict[str, ClipClassifier],
    video: ClipVideo,
    *,
    rounds: int = 3,
    repeats: int = 10,
) -> dict[str, dict[str, float]]:
    """Median ms, batch 1, timed side by side round-robin after a warm-up:
    `question` = one answer (the step question: a head pass, or one decode) and
    `clip` = all three answers for the clip (the batched three-question pass a package
    runs, or three decodes for `generative`)."""
    clip = ClipSamples([video], next(iter(models.values())).config.clip_frames, questions=(0,))
    batch = collate_clips([clip[0]])
    features, mask = batch["features"], batch["mask"]

    def one(model: ClipClassifier) -> None:
        score_questions(model, features, mask, 0)

    def all_three(model: ClipClassifier) -> None:
        with torch.no_grad():
            if model.config.uses_cls:
                model.clip_logits(features, mask)
            else:
                for question in range(len(QUESTIONS)):
                    score_questions(model, features, mask, question)

    times: dict[str, dict[str, list[float]]] = {n: {"question": [], "clip": []} for n in models}
    for model in models.values():
        model.eval()
        for _ in range(2):
            one(model)
            all_three(model)
    for _ in range(rounds):
        for name, model in models.items():
            for key, fn in (("question", one), ("clip", all_three)):
                for _ in range(repeats):
                    tick = time.perf_counter()
                    fn(model)
                    times[name][key].append((time.perf_counter() - tick) * 1e3)
    return {
        name: {key: statistics.median(values) for key, values in parts.items()}
        for name, parts in times.items()
    }
