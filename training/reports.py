"""Reports rendered from saved evaluation results: a Markdown table and PNG plots.

Nothing here runs a model: inputs are the metrics dict and per-frame labels that eval saved, so
reports can be re-rendered at any time. Plots use `matplotlib.figure.Figure` with the Agg canvas
directly (no pyplot, no global backend or figure registry).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from sklearn.metrics import confusion_matrix

from training.metrics import to_segments

if TYPE_CHECKING:
    from training.curves import CurvePoint

__all__ = ["metrics_markdown", "plot_confusion", "plot_learning_curves", "plot_timeline"]

BACKGROUND_COLOR = "#d9d9d9"


# --------------------------------------------------------------------------- markdown


def _percent(value: Any) -> str:
    """A [0, 1] score as a percentage with two decimals; "n/a" when missing or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * float(value):.2f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def metrics_markdown(results: Mapping[str, Any], *, title: str) -> str:
    """Markdown summary (mAP, mcAP, accuracy, segment F1) and a per-class AP table, in %.

    `results` keys: "map", "cmap" (optional), "frame_accuracy", "segment_f1"
    ({threshold: f1}, keys may be strings as read from JSON), "per_class_ap", "skipped",
    "frames". Missing keys are left out of the summary; per-class rows keep the given order.
    """
    summary: list[tuple[str, str]] = []
    if "map" in results:
        summary.append(("mAP", _percent(results["map"])))
    if "cmap" in results:
        summary.append(("mcAP", _percent(results["cmap"])))
    if "frame_accuracy" in results:
        summary.append(("Frame accuracy", _percent(results["frame_accuracy"])))
    for k, f1 in sorted(results.get("segment_f1", {}).items(), key=lambda item: float(item[0])):
        summary.append((f"Segment F1@{float(k):g}", _percent(f1)))

    lines = [f"## {title}", ""]
    if "frames" in results:
        lines += [f"Frames scored: {int(results['frames']):,}", ""]
    lines += ["| Metric | % |", "| --- | ---: |"]
    lines += [f"| {name} | {value} |" for name, value in summary]

    per_class = results.get("per_class_ap", {})
    if per_class:
        lines += ["", "### Per-class AP", "", "| Class | AP (%) |", "| --- | ---: |"]
        lines += [f"| {_cell(name)} | {_percent(ap)} |" for name, ap in per_class.items()]
    skipped = results.get("skipped", [])
    if skipped:
        names = ", ".join(_cell(name) for name in skipped)
        lines += ["", f"Skipped (no positive frame, not averaged): {names}"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- plots


def _check_class_labels(name: str, labels: np.ndarray, num_classes: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or not labels.size:
        raise ValueError(f"{name} has shape {list(labels.shape)}: expected non-empty [frames]")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} has dtype {labels.dtype}: expected integer class indices")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"{name} holds labels {labels.min()}..{labels.max()}, expected 0..{num_classes - 1}"
        )
    return labels


def _class_colors(num_classes: int, background_index: int | None) -> list[Any]:
    """One stable colour per class index; background light grey."""
    others = num_classes - (background_index is not None)
    cmap = colormaps["tab20"] if others <= 20 else colormaps["turbo"]
    positions = range(others) if others <= 20 else np.linspace(0.05, 0.95, others)
    palette = iter([cmap(p) for p in positions])
    return [
        BACKGROUND_COLOR if c == background_index else next(palette) for c in range(num_classes)
    ]


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    fig.clear()


def plot_timeline(
    path: Path,
    *,
    target: np.ndarray,
    pred: np.ndarray,
    class_names: Sequence[str],
    fps: float,
    title: str,
    background_index: int | None = 0,
) -> None:
    """PNG with ground-truth and prediction bands over time (s); legend lists present classes."""
    num_classes = len(class_names)
    target = _check_class_labels("target", target, num_classes)
    pred = _check_class_labels("pred", pred, num_classes)
    if target.shape != pred.shape:
        raise ValueError(f"target has {target.size} frames, pred {pred.size}: expected the same")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if background_index is not None and not 0 <= background_index < num_classes:
        raise ValueError(f"background_index {background_index} outside 0..{num_classes - 1}")
    colors = _class_colors(num_classes, background_index)

    fig = Figure(figsize=(12, 2.8), layout="constrained")
    ax = fig.add_subplot()
    bands = (("ground truth", target, 1.0), ("prediction", pred, 0.0))
    for _, labels, y in bands:
        runs: dict[int, list[tuple[float, float]]] = {}
        for seg in to_segments(labels, background_index=None):
            runs.setdefault(seg.label, []).append((seg.start / fps, seg.length / fps))
        for label, spans in runs.items():
            ax.broken_barh(spans, (y + 0.1, 0.8), facecolors=colors[label])
    ax.set_yticks([y + 0.5 for _, _, y in bands], [name for name, _, _ in bands])
    ax.set_ylim(0, 2)
    ax.set_xlim(0, target.size / fps)
    ax.set_xlabel("time (s)")
    ax.set_title(title)

    present = sorted(set(np.unique(target).tolist()) | set(np.unique(pred).tolist()))
    handles = [Patch(facecolor=colors[c], label=class_names[c]) for c in present]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6))
    _save(fig, Path(path))


def plot_confusion(
    path: Path,
    *,
    true_labels: np.ndarray,
    pred_labels: np.ndarray,
    class_names: Sequence[str],
    title: str,
) -> None:
    """PNG confusion matrix, rows normalised to recall; every class gets a row and a column."""
    num_classes = len(class_names)
    true_labels = _check_class_labels("true_labels", true_labels, num_classes)
    pred_labels = _check_class_labels("pred_labels", pred_labels, num_classes)
    if true_labels.shape != pred_labels.shape:
        raise ValueError(
            f"true_labels has {true_labels.size} frames, pred_labels {pred_labels.size}: "
            "expected the same"
        )
    counts = confusion_matrix(true_labels, pred_labels, labels=range(num_classes))
    totals = counts.sum(axis=1, keepdims=True)
    recall = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)

    side = max(4.0, 0.45 * num_classes + 2.5)
    fig = Figure(figsize=(side + 1.0, side), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(recall, vmin=0.0, vmax=1.0, cmap="Blues")
    fig.colorbar(image, ax=ax, label="recall (row-normalised)")
    ticks = range(num_classes)
    ax.set_xticks(ticks, list(class_names), rotation=60, ha="right", rotation_mode="anchor")
    ax.set_yticks(ticks, list(class_names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    ax.set_title(title)
    if num_classes <= 30:
        for i in range(num_classes):
            for j in range(num_classes):
                if counts[i, j]:
                    value = recall[i, j]
                    color = "white" if value > 0.5 else "black"
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color=color)
    _save(fig, Path(path))


def line_colors(panels: Mapping[str, Mapping[str, object]]) -> dict[str, tuple]:
    """A colour per line label, the same in every panel ("seed 1" is one colour wherever it
    is drawn, even in a panel that lacks seed 0): labels in sorted order on tab10."""
    palette = colormaps["tab10"].colors
    labels = sorted({label for lines in panels.values() for label in lines})
    return {label: palette[i % len(palette)] for i, label in enumerate(labels)}


def plot_learning_curves(
    path: Path,
    panels: Mapping[str, Mapping[str, Sequence[CurvePoint]]],
    *,
    title: str,
    columns: int = 4,
) -> None:
    """PNG of learning curves, a panel each ({panel: {line: curve}}): per line the
    validation loss training watched (solid, dots) and the same training loss (dashed, the
    mean since the previous validation), against the step; ringed, the validation whose
    checkpoint was evaluated (the lowest where the curve does not say)."""
    if not panels:
        raise ValueError("no learning curves to plot")
    columns = min(columns, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig = Figure(figsize=(4.2 * columns, 3.2 * rows), layout="constrained")
    colors = line_colors(panels)
    for index, (panel, lines) in enumerate(panels.items()):
        ax = fig.add_subplot(rows, columns, index + 1)
        for label, points in lines.items():
            color = colors[label]
            val = [(p.step, p.watched) for p in points if p.watched is not None]
            train = [(p.step, p.train_watched) for p in points if p.train_watched is not None]
            if val:
                ax.plot(*zip(*val, strict=True), "-o", color=color, markersize=2.5, label=label)
                kept = [(p.step, p.watched) for p in points if p.kept and p.watched is not None]
                best = kept[-1] if kept else min(val, key=lambda sv: sv[1])
                ax.plot(*best, "o", mfc="none", color=color, markersize=9)
            if train:
                ax.plot(*zip(*train, strict=True), "--", color=color, alpha=0.6, linewidth=1)
        ax.set_yscale("log")
        heads = any(p.val_cls is not None for points in lines.values() for p in points)
        ax.set_ylabel("[CLS] CE" if heads else "LM loss")
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if lines:
            ax.legend(fontsize=7, title="val (solid) / train (dashed)", title_fontsize=7)
    fig.suptitle(title)
    _save(fig, Path(path))
