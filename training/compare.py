"""`gad bench compare`: the paper's comparison on one dataset, backbone and seed —
generative vs discriminative vs GAD — in one table (mAP, accuracy, training time, per-frame
inference latency; the generative latency is its full greedy decode). `compare_kinds` is
the whole run; clip datasets (`task="clip"`) get the step / task / next-step table.

The trained generative model gives two rows: "generative", the paper's baseline (free
greedy decoding, the text mapped to the nearest label by edit distance), and
"generative, constrained" (decoding walks the label trie: a stronger decoder). They share
the model and its scores (each label's log-likelihood, softmaxed over classes: mAP / mcAP
per frame, top-5 for clips) and differ in the decoded labels (accuracy, F1; clips: top-1)
and in latency. Speed ratios divide like by like: one label against one label (a clip
table's batched three-question figure comes after, labelled as batched)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from typing import Any

import torch

from model.checkpoint import load_checkpoint
from runtime.system import cpu_name
from training.curves import curves_markdown, learning_curve
from training.data_info import load_data_info
from training.dataset import load_split
from training.evaluate import compute_metrics, predict_decodings, window_latency_ms, write_metrics
from training.train import TrainConfig, TrainResult, resumable, train

GENERATIVE_CONSTRAINED = "generative, constrained"


def train_kind(base: TrainConfig, kind: str) -> tuple[TrainConfig, TrainResult]:
    """Train one kind into BASE.out/KIND from scratch; with --resume, continue the run that
    is there (an interrupted one from its last checkpoint, a finished one as it is), so a
    long comparison stopped half-way picks up where it stood."""
    cfg = replace(base, kind=kind, out=base.out / kind)
    if base.resume and resumable(cfg.out):  # train() reads the state it resumes
        return cfg, train(cfg)
    shutil.rmtree(cfg.out, ignore_errors=True)  # a benchmark starts from scratch
    cfg = replace(cfg, resume=False)
    return cfg, train(cfg)


def compare_kinds(base: TrainConfig, kinds: list[str], *, limit_test: int | None = None) -> str:
    """Train and evaluate each kind under `base.out/KIND`; the Markdown table (with each
    validated kind's learning curve after it), also written to `base.out/compare.md`."""
    extra = {"test videos": limit_test or "all"}
    if base.task == "clip":
        clip_rows = run_clip_compare(base, kinds, limit_test=limit_test, progress=base.progress)
        table = render_clip_compare(clip_rows, base, extra)
        evaluated = {r.kind: r.best_step for r in clip_rows}
    else:
        rows = run_compare(base, kinds, limit_test=limit_test, progress=base.progress)
        table = render_compare(rows, base, extra)
        evaluated = {r.kind: r.best_step for r in rows}
    # Each kind's learning curve under the table (the generative rows share one model), the
    # checkpoint evaluated marked where a patience kept the best-validated one (without,
    # the last checkpoint is evaluated whatever validated best).
    kept = evaluated if base.patience > 0 else {}
    curves = {k: learning_curve(base.out / k, kept.get(k)) for k in kinds}
    table += "\n".join(curves_markdown(curves))
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
    # With --val-data: the best validation loss, its step (the evaluated checkpoint) and
    # whether training stopped there because the loss was flat (else: its step budget).
    best_val_loss: float | None = None
    best_step: int | None = None
    stopped_flat: bool = False


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
    trained = {}  # row name → (model, training result, metrics)
    for kind in kinds:
        cfg, result = train_kind(base, kind)
        model = load_checkpoint(result.checkpoint)
        decodings = {kind: False}
        if kind == "generative":  # the paper's free decoding, and the constrained one
            decodings[GENERATIVE_CONSTRAINED] = True
        # One pass: the scores once, a decode per row (the two decodings share them).
        predicted = predict_decodings(
            model,
            test,
            info,
            decodings=tuple(decodings.values()),
            batch_size=eval_batch,
            progress=progress,
        )
        for row, constrained in decodings.items():
            metrics = compute_metrics(predicted[constrained], info)
            if kind == "generative":
                metrics["decoding"] = "constrained" if constrained else "free"
            write_metrics(cfg.out / ("eval-constrained" if constrained else "eval"), metrics)
            trained[row] = (model, result, metrics)
    latency = window_latency_ms(
        {row: model for row, (model, _, _) in trained.items()},
        test[0],
        constrained=frozenset({GENERATIVE_CONSTRAINED}),
    )
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
            best_val_loss=result.best_val_loss,
            best_step=result.best_step,
            stopped_flat=result.stopped_flat,
        )
        for kind, (_, result, metrics) in trained.items()
    ]


def render_compare(rows: list[CompareRow], base: TrainConfig, extra: dict[str, Any]) -> str:
    lines = [
        f"Backbone `{base.backbone}`, data `{base.data}`, window {base.long_frames} long + "
        f"{base.short_frames} short, {_schedule(base)}; "
        + ", ".join(f"{k} {v}" for k, v in extra.items()),
        f"CPU: {cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads. "
        "Latency: one frame's label from its window at batch 1, median of 30 timed side by "
        "side after the training: one [CLS] pass, or the generative model's full greedy "
        "decode with a KV cache.",
        "*generative*: the paper's baseline, free greedy decoding with the text mapped to the "
        "nearest label by edit distance; *generative, constrained*: the same model decoding "
        "through the label trie (stronger than the paper's). Both take mAP / mcAP from the "
        "softmax over classes of each label text's teacher-forced log-likelihood (a scoring "
        "pass not in their ms / frame), accuracy and F1 from the decoded labels.",
    ]
    validated = any(r.best_step is not None for r in rows)
    lines += _validation_note(base, "windows") if validated else []
    head = "| classifier | mAP % | mcAP % | frame acc % | F1@0.5 % | train s | steps | "
    rule = "|---|---:|---:|---:|---:|---:|---:|"
    if validated:
        head, rule = head + "best val loss @ step | ", rule + "---|"
    lines += ["", head + "ms / frame | speed vs generative |", rule + "---:|---:|"]
    gen = next((r.latency_ms for r in rows if r.kind == "generative"), None)
    for r in rows:
        ratio = f"{gen / r.latency_ms:.1f}×" if gen else "—"
        lines.append(
            f"| {r.kind} | {100 * r.map:.1f} | {100 * r.cmap:.1f} | {100 * r.accuracy:.1f} | "
            f"{100 * r.f1_50:.1f} | {r.train_seconds:.0f} | {r.steps} | "
            f"{_val_cell(r) if validated else ''}{r.latency_ms:.1f} | {ratio} |"
        )
    return "\n".join(lines)


def _schedule(base: TrainConfig) -> str:
    """The training run both tables name: batch, lr, length, LoRA, precision, seed."""
    steps = f" / {base.max_steps} steps" if base.max_steps else ""
    return (
        f"batch {base.batch_size}, lr {base.lr:g}, {base.epochs} epoch(s){steps}, "
        f"LoRA r={base.lora.rank} α={base.lora.alpha}, "
        f"{'bf16 autocast' if base.bf16 else 'float32'} training, seed {base.seed}"
    )


def _validation_note(base: TrainConfig, items: str) -> list[str]:
    return [
        f"Validation every {base.val_every} steps on {base.val_windows} {items} of "
        f"`{base.val_data}`; *best val loss @ step*: the checkpoint evaluated (with a "
        f"patience of {base.patience}, the best-validated one), *flat* when training "
        "stopped because the loss had stopped improving, *budget* when the step budget "
        "ran out first.",
    ]


def _val_cell(row: CompareRow | ClipCompareRow) -> str:
    if not row.best_step or row.best_val_loss is None:
        return "— | "
    how = "flat" if row.stopped_flat else "budget"
    return f"{row.best_val_loss:.4f} @ {row.best_step}, {how} | "


# --- the clip tasks (COIN-style step / task / next-step) ---------------------------------


@dataclass(frozen=True)
class ClipCompareRow:
    kind: str  # the row's name: a kind, or "generative, constrained"
    metrics: dict[str, Any]  # clip_metrics(): {question: {top1, top5, clips}}
    train_seconds: float
    steps: int
    latency_ms: dict[str, float]  # clip_latency_ms(): {"answer": ..., "clip": ...}
    best_val_loss: float | None = None  # as CompareRow's
    best_step: int | None = None
    stopped_flat: bool = False


def run_clip_compare(
    base: TrainConfig,
    kinds: list[str],
    *,
    eval_batch: int = 64,
    limit_test: int | None = None,
    progress: bool = True,
) -> list[ClipCompareRow]:
    """As `run_compare` for the clip tasks: the generative model gives a free-decoding
    row (the paper's baseline) and a "generative, constrained" one."""
    from training.clip_eval import clip_latency_ms, clip_metrics, predict_clip_decodings
    from training.clips import load_clip_videos
    from training.train import clip_source

    test = load_clip_videos(clip_source(base), "test", limit=limit_test)
    trained = {}  # row name → (model, training result, metrics)
    for kind in kinds:
        cfg, result = train_kind(base, kind)
        model = load_checkpoint(result.checkpoint)
        decodings = {kind: False}
        if kind == "generative":  # the paper's free decoding, and the constrained one
            decodings[GENERATIVE_CONSTRAINED] = True
        predicted = predict_clip_decodings(  # the scores once, a decode per row
            model,
            test,
            decodings=tuple(decodings.values()),
            batch_size=eval_batch,
            progress=progress,
        )
        for row, constrained in decodings.items():
            metrics = clip_metrics(predicted[constrained])
            if kind == "generative":
                metrics["decoding"] = "constrained" if constrained else "free"
            write_metrics(cfg.out / ("eval-constrained" if constrained else "eval"), metrics)
            trained[row] = (model, result, metrics)
    longest = max(test, key=lambda v: len(v.features))
    latency = clip_latency_ms(
        {row: m for row, (m, _, _) in trained.items()},
        longest,
        constrained=frozenset({GENERATIVE_CONSTRAINED}),
    )
    return [
        ClipCompareRow(
            row,
            metrics,
            result.seconds,
            result.steps,
            latency[row],
            best_val_loss=result.best_val_loss,
            best_step=result.best_step,
            stopped_flat=result.stopped_flat,
        )
        for row, (_, result, metrics) in trained.items()
    ]


def render_clip_compare(
    rows: list[ClipCompareRow], base: TrainConfig, extra: dict[str, Any]
) -> str:
    def pct(value: float | None) -> str:
        return "—" if value is None else f"{100 * value:.1f}"

    lines = [
        f"Backbone `{base.backbone}`, data `{base.data}`, clips of at most {base.clip_frames} "
        f"rows, {_schedule(base)}; " + ", ".join(f"{k} {v}" for k, v in extra.items()),
        f"CPU: {cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads. "
        "Latency at batch 1, medians of 30 timed side by side: *ms / answer* = one question "
        "answered on its own (a [CLS] pass, or a greedy decode with a KV cache; the mean "
        "over the three questions), and *speed vs generative* compares these like with "
        "like; *ms / clip, batched* = all three answers as a package gives them (the heads' "
        "one batched pass of the three questions, or three decodes: the generative model "
        "has no batched form), so its ratio sets batched against sequential work.",
        "*generative*: the paper's baseline, free greedy decoding with the text mapped to the "
        "nearest name by edit distance; *generative, constrained*: the same model decoding "
        "through the trie of names (stronger than the paper's). Their top-1 comes from the "
        "decoded answers, their top-5 from the softmax over the names of each name's "
        "teacher-forced log-likelihood (a scoring pass not in their ms). "
        "Top-5: — where trivial (≤ 5 classes).",
    ]
    validated = any(r.best_step is not None for r in rows)
    lines += _validation_note(base, "clips") if validated else []
    lines += [
        "",
        "| classifier | step top-1 % | step top-5 % | task top-1 % | next top-1 % | "
        "next top-5 % | train s | steps | "
        + ("best val loss @ step | " if validated else "")
        + "ms / answer | speed vs generative | ms / clip, batched | "
        "batched speed vs generative |",
        "|---|---:|---:|---:|---:|---:|---:|---:|"
        + ("---|" if validated else "")
        + "---:|---:|---:|---:|",
    ]
    gen = next((r.latency_ms for r in rows if r.kind == "generative"), None)
    for r in rows:
        m, ms = r.metrics, r.latency_ms
        per_answer = f"{gen['answer'] / ms['answer']:.1f}×" if gen else "—"
        batched = f"{gen['clip'] / ms['clip']:.1f}×" if gen else "—"
        lines.append(
            f"| {r.kind} | {pct(m['step']['top1'])} | {pct(m['step']['top5'])} | "
            f"{pct(m['task']['top1'])} | {pct(m['next']['top1'])} | {pct(m['next']['top5'])} | "
            f"{r.train_seconds:.0f} | {r.steps} | {_val_cell(r) if validated else ''}"
            f"{ms['answer']:.1f} | {per_answer} | {ms['clip']:.1f} | {batched} |"
        )
    return "\n".join(lines)
