"""`gad eval`: one run — a checkpoint, or a saved scores file — to a report folder
(metrics.json, report.md, plots), per-frame or clip."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.checkpoint import load_checkpoint
from model.checkpoint_info import read_checkpoint_info, resolve_checkpoint
from runtime.errors import ConfigError
from training.clip_eval import evaluate_clips
from training.data_info import load_data_info
from training.dataset import load_split
from training.devices import resolve_device
from training.evaluate import (
    compute_metrics,
    decoding_note,
    load_scores,
    pooled_labels,
    predict,
    save_scores,
    scores_decoding,
    write_metrics,
)
from training.reports import metrics_markdown, plot_confusion, plot_timeline

# --- `gad eval`: one run, checkpoint or scores file → report folder ------------------------


@dataclass(frozen=True)
class EvalConfig:
    checkpoint: Path | None  # checkpoint or run folder; None with `from_scores`
    data: Path
    dataset: str | None = None
    split: str = "test"
    batch_size: int = 64
    device: str = "auto"  # auto | cpu | cuda
    limit_videos: int | None = None
    save_scores: Path | None = None  # write the scores (.npz) here
    from_scores: Path | None = None  # report from this scores file, without the model
    report: Path | None = None  # default: RUN/eval (or beside the scores file)
    plots: int = 4  # timelines of the first N videos
    annotations: Path | None = None  # clip models: default DATA/coin.json
    fps: float | None = None  # clip models: feature fps
    # generative: decode among the labels only (a label trie) instead of the paper's free
    # greedy decoding mapped to the nearest label by edit distance
    constrained: bool = False


@dataclass(frozen=True)
class EvalReport:
    metrics: dict[str, Any]
    markdown: str  # the metrics table, also in report/metrics.md
    report: Path  # the folder written
    scores: Path | None  # the scores file asked for (cfg.save_scores)


def evaluate_run(cfg: EvalConfig) -> EvalReport:
    """Evaluate a checkpoint on `cfg.split` of `cfg.data` (or recompute a saved scores
    file) and write the report; a clip model gets its top-1 / top-5 table instead."""
    ckpt = None if cfg.checkpoint is None else resolve_checkpoint(cfg.checkpoint)
    if ckpt is not None and not cfg.from_scores and read_checkpoint_info(ckpt).config.is_clip:
        return _evaluate_clip_run(cfg, ckpt)
    info = load_data_info(cfg.data, cfg.dataset)
    decoding = None
    if cfg.from_scores:
        results, names = load_scores(cfg.from_scores)
        if tuple(names) != info.class_names:
            raise ConfigError(f"{cfg.from_scores} has classes {names}, data has {info.class_names}")
        decoding = scores_decoding(cfg.from_scores)
        title = cfg.from_scores.stem
        report = cfg.report or cfg.from_scores.parent / "eval"
    else:
        if ckpt is None:
            raise ConfigError("give a checkpoint (or run folder), or --from-scores FILE")
        videos = load_split(info, cfg.split, limit=cfg.limit_videos)
        model = load_checkpoint(
            ckpt,
            expect_feature_dim=int(videos[0].features.shape[1]),
            expect_class_names=info.model_class_names,
        )
        results = predict(
            model,
            videos,
            info,
            batch_size=cfg.batch_size,
            device=resolve_device(cfg.device),
            constrained=cfg.constrained,
        )
        if model.config.kind == "generative":
            decoding = "constrained" if cfg.constrained else "free"
        title = f"{model.config.kind} on {model.config.backbone}"
        if decoding is not None:
            title = f"{model.config.kind} ({decoding} decoding) on {model.config.backbone}"
        report = cfg.report or ckpt.parent / "eval"
        if cfg.save_scores:
            save_scores(cfg.save_scores, results, info, decoding=decoding)
    metrics = compute_metrics(results, info)
    markdown = metrics_markdown(metrics, title=f"{info.name} {cfg.split}: {title}")
    if decoding is not None:
        metrics["decoding"] = decoding
        markdown += (
            f"\n{decoding_note(decoding)}. Frame accuracy and segment F1 from the decoded "
            "labels; mAP and mcAP from the softmax over classes of each label text's "
            "teacher-forced log-likelihood.\n"
        )
    write_report(report, metrics, markdown)
    truth, predicted = pooled_labels(results, info)
    plot_confusion(
        report / "confusion.png",
        true_labels=truth,
        pred_labels=predicted,
        class_names=list(info.class_names),
        title=title,
    )
    for r in results[: cfg.plots]:
        plot_timeline(
            report / f"timeline_{r.session}.png",
            target=r.targets.argmax(1),
            pred=r.predicted,
            class_names=list(info.class_names),
            fps=info.fps,
            title=f"{r.session}: {title}",
            background_index=info.background_index,
        )
    return EvalReport(metrics, markdown, report, cfg.save_scores)


def _evaluate_clip_run(cfg: EvalConfig, ckpt: Path) -> EvalReport:
    metrics, markdown = evaluate_clips(
        ckpt,
        cfg.data,
        split=cfg.split,
        annotations=cfg.annotations,
        fps=cfg.fps,
        dataset=cfg.dataset,
        limit_videos=cfg.limit_videos,
        batch_size=cfg.batch_size,
        device=resolve_device(cfg.device),
        constrained=cfg.constrained,
    )
    if read_checkpoint_info(ckpt).config.kind == "generative":
        metrics["decoding"] = "constrained" if cfg.constrained else "free"
        markdown += f"\n\n{decoding_note(metrics['decoding'])}."
    report = cfg.report or ckpt.parent / "eval"
    write_report(report, metrics, markdown)
    return EvalReport(metrics, markdown, report, None)


def write_report(out_dir: Path, metrics: dict[str, Any], markdown: str) -> None:
    write_metrics(out_dir, metrics)
    (out_dir / "metrics.md").write_text(markdown + "\n")
