"""Evaluation of clip models: top-1 / top-5 accuracy for step recognition, task
recognition and next-step forecasting on a split, and per-answer latency.

[CLS] models: their heads' softmax, top-1 its argmax. The generative classifier: top-1
from its decoded answer — by default free greedy decoding mapped to the nearest name by
edit distance (the paper's baseline), or constrained to the names by a trie — and, for
top-5, the softmax over the names of each name's teacher-forced log-likelihood after the
question (ClipClassifier.question_log_likelihoods), so its top-5 ranks like the heads'.
(The authors report only the decoded answer's accuracy.)
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
    scores: np.ndarray  # [N, classes] softmax: the head's, or (generative) of each name's LL
    labels: np.ndarray  # [N]
    decoded: np.ndarray | None = None  # [N] the decoded answer's class (generative)

    @property
    def predicted(self) -> np.ndarray:
        """[N] the answer reported per clip: the decoded one, else the top score."""
        return self.scores.argmax(1) if self.decoded is None else self.decoded


@torch.no_grad()
def score_questions(
    model: ClipClassifier,
    features: torch.Tensor,
    mask: torch.Tensor,
    question: int,
    *,
    decodings: tuple[bool, ...] = (False,),
) -> tuple[np.ndarray, dict[bool, np.ndarray]]:
    """([B, classes] scores, {constrained: [B] decoded classes}) for clips all asked
    `question`.

    [CLS] models: the head's softmax in one pass, no decodes. `generative`: the softmax
    over the names of each name's log-likelihood and a greedy decode for each of
    `decodings` (False: free, True: constrained), all continuing one pass over the clips."""
    if model.config.uses_cls:
        steps, tasks = model.question_logits(features, mask, _asked(features, question))
        return torch.softmax(tasks if question == TASK else steps, dim=-1).cpu().numpy(), {}
    read = model.question_prefill(features, mask, question)  # scored, then decoded
    logp = model.question_log_likelihoods(features, mask, question, prefilled=read)
    scores = torch.softmax(logp, dim=-1)
    decoded = {
        flag: np.asarray(
            model.generate_clip(features, mask, question, constrained=flag, prefilled=read).indices,
            dtype=np.int64,
        )
        for flag in decodings
    }
    return scores.cpu().numpy(), decoded


@torch.no_grad()
def label_questions(
    model: ClipClassifier,
    features: torch.Tensor,
    mask: torch.Tensor,
    question: int,
    *,
    constrained: bool = False,
) -> list[int]:
    """The answer to `question` per clip, as a deployment computes it: the head's argmax
    after one pass, or `generative`'s greedy decode (no scores). What latency times."""
    if model.config.uses_cls:
        steps, tasks = model.question_logits(features, mask, _asked(features, question))
        return (tasks if question == TASK else steps).argmax(-1).tolist()
    return model.generate_clip(features, mask, question, constrained=constrained).indices


TOKENS_PER_BATCH = 8192  # 64 clips of 128 rows, or 6 of the paper's 1,200-row clips


def clip_batches(items: ClipSamples, batch_size: int, rows_per_batch: int) -> list[list[int]]:
    """Consecutive item indices in batches of at most `batch_size` clips whose padded
    size (clips × the longest clip's rows after subsampling) stays within
    `rows_per_batch` (a clip longer than that goes alone)."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i, sample in enumerate(items.samples):
        rows = min(sample.end - sample.start, items.max_frames)
        if current and (
            len(current) == batch_size or max(longest, rows) * (len(current) + 1) > rows_per_batch
        ):
            batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, rows)
    return [*batches, current] if current else batches


def _asked(features: torch.Tensor, question: int) -> torch.Tensor:
    return torch.full((len(features),), question, dtype=torch.long, device=features.device)


def predict_clips(
    model: ClipClassifier,
    videos: list[ClipVideo],
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    constrained: bool = False,
    progress: bool = True,
    tokens_per_batch: int = TOKENS_PER_BATCH,
) -> dict[str, QuestionScores]:
    """Scores (and, for `generative`, decoded answers) of every step, task and next-step
    clip of `videos`, per question. `constrained`: `generative` decodes among the names
    only (a trie) instead of the paper's free decoding; other kinds ignore it. A batch
    holds at most `batch_size` clips and `tokens_per_batch` frame tokens (clips × the
    longest clip's rows × the model's tokens per row): long clips go a few at a time."""
    return predict_clip_decodings(
        model,
        videos,
        decodings=(constrained,),
        batch_size=batch_size,
        device=device,
        progress=progress,
        tokens_per_batch=tokens_per_batch,
    )[constrained]


def predict_clip_decodings(
    model: ClipClassifier,
    videos: list[ClipVideo],
    *,
    decodings: tuple[bool, ...] = (False, True),
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: bool = True,
    tokens_per_batch: int = TOKENS_PER_BATCH,
) -> dict[bool, dict[str, QuestionScores]]:
    """`predict_clips` for each of `decodings` (False: free, True: constrained) in one
    pass: the scores computed once and shared, a greedy decode per flag (`generative`)."""
    model.eval().to(device)
    results: dict[bool, dict[str, QuestionScores]] = {flag: {} for flag in decodings}
    for question, name in enumerate(QUESTIONS):
        items = ClipSamples(videos, model.config.clip_frames, questions=(question,))
        scores: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        decoded: dict[bool, list[np.ndarray]] = {}
        for indices in tqdm(
            clip_batches(items, batch_size, tokens_per_batch // model.connector.per_row),
            desc=f"eval {model.config.kind} {name}",
            unit="batch",
            disable=not progress,
        ):
            batch = collate_clips([items[i] for i in indices])
            batch_scores, batch_decoded = score_questions(
                model,
                batch["features"].to(device),
                batch["mask"].to(device),
                question,
                decodings=decodings,
            )
            scores.append(batch_scores)
            for flag, classes in batch_decoded.items():
                decoded.setdefault(flag, []).append(classes)
            labels.append(batch["labels"].numpy())
        question_scores, question_labels = np.concatenate(scores), np.concatenate(labels)
        for flag in decodings:
            results[flag][name] = QuestionScores(
                question_scores,
                question_labels,
                np.concatenate(decoded[flag]) if flag in decoded else None,
            )
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
    constrained: bool = False,
) -> tuple[dict[str, Any], str]:
    """A clip checkpoint on `split` of the clip dataset at `data`: (clip_metrics(), their
    Markdown table). `gad eval` of a clip model (training/evaluate.py writes the report
    and says which decoding a generative model ran)."""
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
    metrics = clip_metrics(results)
    title = f"{source.name} {split}: {model.config.kind} on {model.config.backbone}"
    markdown = clip_metrics_markdown(metrics, title=title)
    if model.config.kind == "generative":
        markdown += f"\n\n{GENERATIVE_SCORES}"
    return metrics, markdown


GENERATIVE_SCORES = (
    "Top-1 from the decoded answers; top-5 from the softmax over the names of each name's "
    "teacher-forced log-likelihood."
)


def clip_metrics(results: dict[str, QuestionScores]) -> dict[str, Any]:
    """{question: {"top1", "top5", "clips"}}: top-1 from the answer reported per clip
    (`QuestionScores.predicted`), top-5 from the scores (None with 5 classes or fewer,
    where it is trivial)."""
    metrics: dict[str, Any] = {}
    for name, r in results.items():
        classes = np.arange(r.scores.shape[1])
        top1 = float((r.predicted == r.labels).mean())
        top5 = None
        if len(classes) > 5:
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
    constrained: frozenset[str] = frozenset(),
) -> dict[str, dict[str, float]]:
    """Median ms at batch 1 on one clip of `video`, timed side by side round-robin after a
    warm-up, for each model (`generative` decodes free, or constrained for the names in
    `constrained`):

    `answer`  one answer: the three questions asked one at a time (`label_questions`:
              a head pass each, or one greedy decode each), divided by three;
    `clip`    all three answers as a package gives them: the heads' one batched pass of
              the three questions (`clip_logits`), or three decodes for `generative`,
              which has no batched form. Batched against sequential: not like with like.
    """
    clip = ClipSamples([video], next(iter(models.values())).config.clip_frames, questions=(0,))
    batch = collate_clips([clip[0]])
    features, mask = batch["features"], batch["mask"]

    def answers(name: str, model: ClipClassifier) -> None:
        for question in range(len(QUESTIONS)):
            label_questions(model, features, mask, question, constrained=name in constrained)

    def batched(name: str, model: ClipClassifier) -> None:
        if model.config.uses_cls:
            with torch.no_grad():
                model.clip_logits(features, mask)
        else:
            answers(name, model)

    times: dict[str, dict[str, list[float]]] = {n: {"answer": [], "clip": []} for n in models}
    for name, model in models.items():
        model.eval()
        for _ in range(2):
            answers(name, model)
            batched(name, model)
    for _ in range(rounds):
        for name, model in models.items():
            for key, fn, per in (("answer", answers, len(QUESTIONS)), ("clip", batched, 1)):
                for _ in range(repeats):
                    tick = time.perf_counter()
                    fn(name, model)
                    times[name][key].append((time.perf_counter() - tick) * 1e3 / per)
    return {
        name: {key: statistics.median(values) for key, values in parts.items()}
        for name, parts in times.items()
    }
