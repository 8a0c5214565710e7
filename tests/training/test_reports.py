from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training.curves import CurvePoint
from training.reports import (
    line_colors,
    metrics_markdown,
    plot_confusion,
    plot_learning_curves,
    plot_timeline,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAMES = ("background", "open drawer", "close drawer", "open door")

RESULTS = {
    "map": 0.7123,
    "cmap": 0.8,
    "frame_accuracy": 0.9,
    "segment_f1": {"0.5": 0.4, "0.1": 0.6, "0.25": 0.55},
    "per_class_ap": {"open drawer": 0.6246, "close | drawer": 0.8},
    "skipped": ["open door"],
    "frames": 12345,
}


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 1000


def test_markdown_contains_the_numbers() -> None:
    text = metrics_markdown(json.loads(json.dumps(RESULTS)), title="THUMOS'14 test")
    assert text.startswith("## THUMOS'14 test\n")
    assert "Frames scored: 12,345" in text
    for row in (
        "| mAP | 71.23 |",
        "| mcAP | 80.00 |",
        "| Frame accuracy | 90.00 |",
        "| Segment F1@0.1 | 60.00 |",
        "| Segment F1@0.5 | 40.00 |",
        "| open drawer | 62.46 |",
        "| close \\| drawer | 80.00 |",  # a pipe in a name does not break the table
    ):
        assert row in text
    # Thresholds sorted numerically, per-class rows in the given order.
    assert text.index("F1@0.1 ") < text.index("F1@0.25") < text.index("F1@0.5 ")
    assert text.index("open drawer") < text.index("close \\| drawer")
    assert "Skipped (no positive frame, not averaged): open door" in text


def test_markdown_without_optional_keys() -> None:
    text = metrics_markdown({"map": float("nan"), "per_class_ap": {}}, title="empty")
    assert "| mAP | n/a |" in text
    assert "mcAP" not in text
    assert "Per-class" not in text


def test_plot_timeline_writes_png_with_absent_classes(tmp_path: Path) -> None:
    # "open door" appears in neither band; the prediction misses "close drawer".
    target = np.array([0] * 20 + [1] * 15 + [0] * 10 + [2] * 15)
    pred = np.array([0] * 22 + [1] * 20 + [0] * 18)
    path = tmp_path / "plots" / "timeline.png"
    plot_timeline(path, target=target, pred=pred, class_names=NAMES, fps=4.0, title="video_1")
    assert_png(path)


def test_plot_confusion_writes_png_with_absent_classes(tmp_path: Path) -> None:
    true_labels = np.array([0, 0, 1, 1, 2, 2, 2])
    pred_labels = np.array([0, 1, 1, 1, 2, 0, 2])  # "open door" absent from both
    path = tmp_path / "confusion.png"
    plot_confusion(
        path, true_labels=true_labels, pred_labels=pred_labels, class_names=NAMES, title="test"
    )
    assert_png(path)


def test_plots_reject_bad_labels(tmp_path: Path) -> None:
    labels = np.array([0, 1, 4])
    with pytest.raises(ValueError, match=r"target holds labels 0\.\.4, expected 0\.\.3"):
        plot_timeline(
            tmp_path / "t.png", target=labels, pred=labels, class_names=NAMES, fps=1, title=""
        )
    with pytest.raises(ValueError, match="true_labels has 2 frames, pred_labels 3"):
        plot_confusion(
            tmp_path / "c.png",
            true_labels=np.array([0, 1]),
            pred_labels=np.array([0, 1, 2]),
            class_names=NAMES,
            title="",
        )


def test_a_seed_keeps_its_colour_in_every_panel(tmp_path: Path) -> None:
    curve = (CurvePoint(25, 1.0, 0.9, None, 0.8, 0.7, None),
             CurvePoint(50, 0.5, 0.4, None, 0.6, 0.5, None))  # fmt: skip
    # A panel without seed 0 must not draw seed 1 in seed 0's colour.
    panels = {"gad": {"seed 0": curve, "seed 1": curve}, "generative": {"seed 1": curve,
              "seed 2": curve}}  # fmt: skip
    colors = line_colors(panels)
    assert list(colors) == ["seed 0", "seed 1", "seed 2"]
    assert len(set(colors.values())) == 3
    plot_learning_curves(tmp_path / "curves.png", panels, title="t")
    assert_png(tmp_path / "curves.png")
