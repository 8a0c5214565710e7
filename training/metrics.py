"""Pure evaluation metrics for online action detection (numpy + scikit-learn, no I/O).

Per-frame (m)AP and calibrated (m)cAP follow the OAD literature (LSTR / TeSTra
`perframe_average_precision`): frames of all videos are pooled, ambiguous frames are dropped,
background is not scored and classes without a positive frame are skipped. Segmental F1@k follows
action segmentation (Lea et al. 2017, MS-TCN). Reading predictions and writing reports is done
around these functions, in `training/reports.py` and the eval entry point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

from runtime.segments import Segment, to_segments
from runtime.segments import check_labels as _check_labels

__all__ = [
    "MetricsResult",
    "Segment",
    "calibrated_average_precision",
    "frame_accuracy",
    "per_frame_ap",
    "segment_f1",
    "to_segments",
]


@dataclass(frozen=True)
class MetricsResult:
    """Per-frame (m)AP or (m)cAP over the classes that could be scored."""

    map: float  # mean of per-class AP over scored classes; NaN when no class was scored
    per_class_ap: dict[str, float]  # class name -> AP, only classes scored
    skipped: list[str]  # classes with no positive frame, not averaged
    frames: int  # frames that counted, after ignore/ambiguous removal

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (floats and ints, no numpy scalars)."""
        return {
            "map": float(self.map),
            "per_class_ap": {name: float(ap) for name, ap in self.per_class_ap.items()},
            "skipped": list(self.skipped),
            "frames": int(self.frames),
        }


# --------------------------------------------------------------------------- validation


def _shape(array: np.ndarray) -> str:
    return "[" + ", ".join(str(n) for n in array.shape) + "]"


def _check_scores(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate [frames, classes] targets and scores; return them as arrays."""
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.ndim != 2 or y_score.ndim != 2 or y_true.shape != y_score.shape:
        raise ValueError(
            f"y_true has shape {_shape(y_true)}, y_score {_shape(y_score)}: "
            "expected the same [frames, classes]"
        )
    nan = int(np.isnan(y_score).sum())
    if nan:
        raise ValueError(f"y_score has {nan} NaN values: expected finite scores")
    if not np.isfinite(y_score).all():
        raise ValueError("y_score has infinite values: expected finite scores")
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError("y_true must hold only 0 and 1 (one-hot or multi-hot targets)")
    return y_true.astype(bool), y_score


def _check_index(name: str, index: int | None, num_classes: int) -> None:
    if index is not None and not 0 <= index < num_classes:
        raise ValueError(f"{name} {index} outside 0..{num_classes - 1}")


def _drop_ignored(
    y_true: np.ndarray, y_score: np.ndarray, ignore_index: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Drop frames whose ground truth is the ignore class (THUMOS "Ambiguous")."""
    if ignore_index is None:
        return y_true, y_score
    keep = ~y_true[:, ignore_index]
    return y_true[keep], y_score[keep]


# --------------------------------------------------------------------------- per-frame AP


def calibrated_average_precision(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Calibrated average precision of one class (De Geest et al., ECCV 2016).

    With P positives, N negatives and w = N / P, frames are ranked by descending score and,
    at each rank, cumulative TP and FP give the calibrated precision

        cPrec = TP / (TP + FP / w)

    i.e. precision as if the class had as many positives as negatives. Then

        cAP = sum_k cPrec(k) * 1[frame k is positive] / P

    the mean calibrated precision over the positive frames. Frames with tied scores are
    ranked together (the precision of a tie group is taken after the whole group), so the
    result does not depend on frame order; without ties this is the plain per-frame sum.
    With w = 1 (N == P) cPrec is the ordinary precision and cAP equals
    `sklearn.metrics.average_precision_score`. Requires at least one positive.
    """
    positive = np.asarray(y_true, dtype=bool)
    score = np.asarray(y_score, dtype=np.float64)
    num_pos = int(positive.sum())
    num_neg = positive.size - num_pos
    if num_pos == 0:
        raise ValueError("calibrated AP needs at least one positive frame")
    if num_neg == 0:
        return 1.0  # no false positive can occur: cPrec is 1 everywhere
    order = np.argsort(-score, kind="stable")
    score, positive = score[order], positive[order]
    tp = np.cumsum(positive)
    fp = np.cumsum(~positive)
    # Evaluate at the last frame of each run of equal scores (one threshold per distinct score).
    last = np.r_[np.flatnonzero(np.diff(score)), score.size - 1]
    tp, fp = tp[last], fp[last]
    w = num_neg / num_pos
    calibrated_precision = tp / (tp + fp / w)
    new_positives = np.diff(tp, prepend=0)
    return float(np.sum(calibrated_precision * new_positives) / num_pos)


def per_frame_ap(
    y_true: np.ndarray,
    y_score: np.ndarray,
    class_names: Sequence[str],
    *,
    ignore_index: int | None = None,
    background_index: int | None = 0,
    calibrated: bool = False,
) -> MetricsResult:
    """Per-frame mAP (or mcAP with `calibrated=True`) over frames of all videos, pooled.

    y_true: [N, C] one-hot (or multi-hot) targets; y_score: [N, C] scores (softmax).
    Frames whose ground truth is `ignore_index` are dropped first; then every class except
    `background_index` and `ignore_index` is scored with `average_precision_score` (or
    `calibrated_average_precision`), unless it has no positive frame left, in which case it is
    listed in `skipped` and not averaged. `map` is NaN when no class could be scored.
    """
    y_true, y_score = _check_scores(y_true, y_score)
    num_classes = y_true.shape[1]
    if len(class_names) != num_classes:
        raise ValueError(
            f"class_names has {len(class_names)} names, y_true {num_classes} classes: "
            "expected one name per class"
        )
    _check_index("ignore_index", ignore_index, num_classes)
    _check_index("background_index", background_index, num_classes)
    y_true, y_score = _drop_ignored(y_true, y_score, ignore_index)

    per_class: dict[str, float] = {}
    skipped: list[str] = []
    for c, name in enumerate(class_names):
        if c in (background_index, ignore_index):
            continue
        if not y_true[:, c].any():
            skipped.append(name)
            continue
        if calibrated:
            per_class[name] = calibrated_average_precision(y_true[:, c], y_score[:, c])
        else:
            per_class[name] = float(average_precision_score(y_true[:, c], y_score[:, c]))
    mean = float(np.mean(list(per_class.values()))) if per_class else float("nan")
    return MetricsResult(map=mean, per_class_ap=per_class, skipped=skipped, frames=len(y_true))


def frame_accuracy(
    y_true: np.ndarray, y_score: np.ndarray, *, ignore_index: int | None = None
) -> float:
    """Share of frames whose argmax score is the argmax target, ignoring `ignore_index` frames.

    NaN when no frame is left.
    """
    y_true, y_score = _check_scores(y_true, y_score)
    _check_index("ignore_index", ignore_index, y_true.shape[1])
    y_true, y_score = _drop_ignored(y_true, y_score, ignore_index)
    if not len(y_true):
        return float("nan")
    return float(np.mean(y_score.argmax(axis=1) == y_true.argmax(axis=1)))


# --------------------------------------------------------------------------- segments


def _iou(a: Segment, b: Segment) -> float:
    inter = max(0, min(a.end, b.end) - max(a.start, b.start))
    return inter / (a.length + b.length - inter)


def _match_counts(
    truth: list[Segment], pred: list[Segment], threshold: float
) -> tuple[int, int, int]:
    """(tp, fp, fn) of one video, matched as MS-TCN's evaluation does: each prediction (in
    time order) takes its best-IoU ground-truth segment of the same label; it is a true
    positive when that IoU reaches the threshold and the segment is not already taken."""
    matched = [False] * len(truth)
    tp = fp = 0
    for p in pred:
        best, best_iou = -1, -1.0
        for j, t in enumerate(truth):
            if t.label != p.label:
                continue
            iou = _iou(p, t)
            if iou > best_iou:
                best, best_iou = j, iou
        if best >= 0 and best_iou >= threshold and not matched[best]:
            matched[best] = True
            tp += 1
        else:
            fp += 1
    return tp, fp, len(truth) - tp


def segment_f1(
    true_labels: Sequence[np.ndarray],
    pred_labels: Sequence[np.ndarray],
    *,
    thresholds: Sequence[float] = (0.1, 0.25, 0.5),
    background_index: int | None = 0,
    ignore_index: int | None = None,
) -> dict[float, float]:
    """Segmental F1@k (Lea et al. 2017; MS-TCN) over videos, as {threshold: F1 in [0, 1]}.

    Per video, each predicted segment (in time order) is a true positive when its IoU with the
    best-matching ground-truth segment of the same label is >= threshold and that segment is
    not matched yet, and a false positive otherwise (MS-TCN's rule); ground-truth segments left
    unmatched are false negatives.
    TP/FP/FN are summed over videos; F1 = 2PR / (P + R), 0 when undefined (e.g. no TP).
    """
    if len(true_labels) != len(pred_labels):
        raise ValueError(
            f"true_labels has {len(true_labels)} videos, pred_labels {len(pred_labels)}: "
            "expected one prediction per video"
        )
    for k in thresholds:
        if not 0.0 <= k <= 1.0:
            raise ValueError(f"IoU threshold {k} outside [0, 1]")
    videos: list[tuple[list[Segment], list[Segment]]] = []
    for i, (truth, pred) in enumerate(zip(true_labels, pred_labels, strict=True)):
        truth = _check_labels(f"true_labels[{i}]", truth)
        pred = _check_labels(f"pred_labels[{i}]", pred)
        if truth.shape != pred.shape:
            raise ValueError(
                f"video {i}: true_labels has {truth.size} frames, pred_labels {pred.size}: "
                "expected the same length"
            )
        videos.append(
            (
                to_segments(truth, background_index=background_index, ignore_index=ignore_index),
                to_segments(pred, background_index=background_index, ignore_index=ignore_index),
            )
        )

    scores: dict[float, float] = {}
    for k in thresholds:
        tp = fp = fn = 0
        for truth_segments, pred_segments in videos:
            v_tp, v_fp, v_fn = _match_counts(truth_segments, pred_segments, k)
            tp, fp, fn = tp + v_tp, fp + v_fp, fn + v_fn
        # With tp > 0 both P and R are positive; F1 = 2PR/(P+R) simplifies to 2TP/(2TP+FP+FN).
        scores[k] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return scores
