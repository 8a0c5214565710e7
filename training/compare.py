"""`gad bench compare`: the paper's comparison on one dataset, backbone and seed —
generative vs discriminative vs GAD — in one table (mAP, accuracy, training time, per-frame
inference latency; the generative latency is its full greedy decode). `compare_kinds` is
the whole run; clip datasets (`task="clip"`) get the step / task / next-step table."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from typing import Any

import torch

from model.checkpoint import load_checkpoint
from runtime.system import cpu_name
from training.data_info import load_data_info
from training.dataset import load_split
from training.evaluate import compute_metrics, predict, window_latency_ms, write_metrics
from training.train import TrainConfig, train


def compare_kinds(base: TrainConfig, kinds: list[str], *, limit_test: int | None = None) -> str:
    """Train and evaluate each kind under `base.out/KIND`; the Markdown table, also
    written to `base.out/compare.md`."""
    extra = {"test videos": limit_test or "all"}
    if base.task == "clip":
        clip_rows = run_clip_compare(base, kinds, limit_test=limit_test, progress=base.progress)
        table = render_clip_compare(clip_rows, base, extra)
    else:
        rows = run_compare(base, kinds, limit_test=limit_test, progress=base.progress)
        table = render_compare(rows, base, extra)
    base.out.mkdir(parents=True, exist_ok=True)
    (base.out / "compare.md").write_text(table + "\n")
    return table


@dataclass(frozen=True)
class CompareRow:
    kind: str
    map: float
    cmap: float
    accuracy: float
    f1_50: float
    train_seconds: float
    steps: int
    latency_ms: float


def run_compare(
    base: TrainConfig,
    kinds: list[str],
    *,
    eval_batch: int = 64,
    limit_test: int | None = None,
    progress: bool = True,
) -> list[CompareRow]:
    info = load_data_info(
        base.data, base.dataset, feature_dirs=list(base.feature_dirs or []) or None
    )
    test = load_split(info, "test", limit=limit_test)
    trained = {}
    for kind in kinds:
        cfg = replace(base, kind=kind, out=base.out / kind, resume=False)
        shutil.rmtree(cfg.out, ignore_errors=True)  # a benchmark starts from scratch
        result = train(cfg)
        model = load_checkpoint(result.checkpoint)
        metrics = compute_metrics(
            predict(model, test, info, batch_size=eval_batch, progress=progress), info
        )
        write_metrics(cfg.out / "eval", metrics)
        trained[kind] = (model, result, metrics)
    latency = window_latency_ms({kind: model for kind, (model, _, _) in trained.items()}, test[0])
    return [
        CompareRow(
            kind=kind,
            map=metrics["map"],
            cmap=metrics["cmap"],
            accuracy=metrics["frame_accuracy"],
            f1_50=metrics["segment_f1"]["0.5"],
            train_seconds=result.seconds,
            steps=result.steps,
            latency_ms=latency[kind],
        )
        for kind, (_, result, metrics) in trained.items()
    ]


def render_compare(rows: list[CompareRow], base: TrainConfig, extra: dict[str, Any]) -> str:
    lines = [
        f"Backbone `{base.backbone}`, data `{base.data}`, window {base.long_frames} long + "
        f"{base.short_frames} short, batch {base.batch_size}, lr {base.lr:g}, "
        f"{base.epochs} epoch(s){f' / {base.max_steps} steps' if base.max_steps else ''}, "
        f"LoRA r={base.lora.rank} α={base.lora.alpha}, seed {base.seed}; "
        + ", ".join(f"{k} {v}" for k, v in extra.items()),
        f"CPU: {cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads. "
        "Latency: one frame's window at batch 1, median of 30 timed side by side after the "
        "training (generative: its full constrained greedy decode with a KV cache).",
        "",
        "| classifier | mAP % | mcAP % | frame acc % | F1@0.5 % | train s | steps | ms / frame | "
        "speed vs generative |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    gen = next((r.latency_ms for r in rows if r.kind == "generative"), None)
    for r in rows:
        ratio = f"{gen / r.latency_ms:.1f}×" if gen else "—"
        lines.append(
            f"| {r.kind} | {100 * r.map:.1f} | {100 * r.cmap:.1f} | {100 * r.accuracy:.1f} | "
            f"{100 * r.f1_50:.1f} | {r.train_seconds:.0f} | {r.steps} | {r.latency_ms:.1f} | "
            f"{ratio} |"
        )
    return "\n".join(lines)


# --- the clip tasks (COIN-style step / task / next-step) ---------------------------------


@dataclass(frozen=True)
class ClipCompareRow:
    kind: str
    metrics: dict[str, Any]  # clip_metrics(): {question: {top1, top5, clips}}
    train_seconds: float
    steps: int
    latency_ms: dict[str, float]  # {"question": ..., "clip": ...}


def run_clip_compare(
    base: TrainConfig,
    kinds: list[str],
    *,
    eval_batch: int = 64,
    limit_test: int | None = None,
    progress: bool = True,
) -> list[ClipCompareRow]:
    from training.clip_eval import clip_latency_ms, clip_metrics, predict_clips
    from training.clips import load_clip_videos
    from training.train import clip_source

    test = load_clip_videos(clip_source(base), "test", limit=limit_test)
    trained = {}
    for kind in kinds:
        cfg = replace(base, kind=kind, out=base.out / kind, resume=False)
        shutil.rmtree(cfg.out, ignore_errors=True)
        result = train(cfg)
        model = load_checkpoint(result.checkpoint)
        metrics = clip_metrics(
            predict_clips(model, test, batch_size=eval_batch, progress=progress),
            generative=kind == "generative",
        )
        write_metrics(cfg.out / "eval", metrics)
        trained[kind] = (model, result, metrics)
    longest = max(test, key=lambda v: len(v.features))
    latency = clip_latency_ms({kind: m for kind, (m, _, _) in trained.items()}, longest)
    return [
        ClipCompareRow(kind, metrics, result.seconds, result.steps, latency[kind])
        for kind, (_, result, metrics) in trained.items()
    ]


def render_clip_compare(
    rows: list[ClipCompareRow], base: TrainConfig, extra: dict[str, Any]
) -> str:
    def pct(value: float | None) -> str:
        return "—" if value is None else f"{100 * value:.1f}"

    lines = [
        f"Backbone `{base.backbone}`, data `{base.data}`, clips of at most {base.clip_frames} "
        f"rows, batch {base.batch_size}, lr {base.lr:g}, {base.epochs} epoch(s), "
        f"LoRA r={base.lora.rank} α={base.lora.alpha}, seed {base.seed}; "
        + ", ".join(f"{k} {v}" for k, v in extra.items()),
        f"CPU: {cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads. "
        "Latency at batch 1, median of 30 timed side by side: *one answer* = the step "
        "question (a [CLS] pass, or a constrained greedy decode with a KV cache); *clip* = "
        "all three answers (one batched pass of the three questions, or three decodes). "
        "Top-5: — where undefined (a decoded answer has no ranking) or trivial (≤ 5 classes).",
        "",
        "| classifier | step top-1 % | step top-5 % | task top-1 % | next top-1 % | "
        "next top-5 % | train s | ms / answer | ms / clip | speed vs generative |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    gen = next((r.latency_ms["clip"] for r in rows if r.kind == "generative"), None)
    for r in rows:
        m = r.metrics
        ratio = f"{gen / r.latency_ms['clip']:.1f}×" if gen else "—"
        lines.append(
            f"| {r.kind} | {pct(m['step']['top1'])} | {pct(m['step']['top5'])} | "
            f"{pct(m['task']['top1'])} | {pct(m['next']['top1'])} | {pct(m['next']['top5'])} | "
            f"{r.train_seconds:.0f} | {r.latency_ms['question']:.1f} | "
            f"{r.latency_ms['clip']:.1f} | {ratio} |"
        )
    return "\n".join(lines)
