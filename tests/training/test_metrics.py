from __future__ import annotations

import math
import re

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from training.metrics import (
    Segment,
    calibrated_average_precision,
    frame_accuracy,
    per_frame_ap,
    segment_f1,
    to_segments,
)

NAMES = ("background", "open drawer", "close drawer")

# Six frames, background + 2 classes. Ground truth per frame and the score columns:
#   frame        0    1    2    3    4    5
#   label        1    2    1    0    2    0
#   background  .2   .1   .3   .2   .3   .1
#   open drawer .7   .5   .4   .6   .1   .2
#   close draw. .1   .8   .3   .2   .6   .7
LABELS = np.array([1, 2, 1, 0, 2, 0])
SCORES = np.array(
    [
        [0.2, 0.7, 0.1],
        [0.1, 0.5, 0.8],
        [0.3, 0.4, 0.3],
        [0.2, 0.6, 0.2],
        [0.3, 0.1, 0.6],
        [0.1, 0.2, 0.7],
    ]
)
# open drawer ranked: f0 (+) .7, f3 (-) .6, f1 (-) .5, f2 (+) .4, f5 .2, f4 .1
#   precision at the positives: 1/1, 2/4 -> AP = (1 + 1/2) / 2 = 3/4
# close drawer ranked: f1 (+) .8, f5 (-) .7, f4 (+) .6, f2 .3, f3 .2, f0 .1
#   precision at the positives: 1/1, 2/3 -> AP = (1 + 2/3) / 2 = 5/6
# mAP = (3/4 + 5/6) / 2 = 19/24
AP_OPEN, AP_CLOSE = 3 / 4, 5 / 6


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.int64)[labels]


def with_column(array: np.ndarray, column: np.ndarray) -> np.ndarray:
    return np.concatenate([array, column[:, None]], axis=1)


# --------------------------------------------------------------------------- per-frame AP


def test_ap_matches_hand_computed_values() -> None:
    result = per_frame_ap(one_hot(LABELS, 3), SCORES, NAMES)
    assert result.per_class_ap == {
        "open drawer": pytest.approx(AP_OPEN),
        "close drawer": pytest.approx(AP_CLOSE),
    }
    assert result.map == pytest.approx(19 / 24)
    assert result.skipped == []
    assert result.frames == 6


def test_background_excluded_unless_asked() -> None:
    y_true = one_hot(LABELS, 3)
    assert "background" not in per_frame_ap(y_true, SCORES, NAMES).per_class_ap
    result = per_frame_ap(y_true, SCORES, NAMES, background_index=None)
    assert list(result.per_class_ap) == list(NAMES)
    assert result.map == pytest.approx(np.mean(list(result.per_class_ap.values())))
    assert result.per_class_ap["open drawer"] == pytest.approx(AP_OPEN)


def test_ambiguous_frames_are_dropped() -> None:
    # Frame 6 is "ambiguous" (class 3), and open drawer scores it highest (.95).
    names = (*NAMES, "ambiguous")
    labels = np.r_[LABELS, 3]
    scores = with_column(np.vstack([SCORES, [0.0, 0.95, 0.0]]), np.r_[np.zeros(6), 0.9])
    y_true = one_hot(labels, 4)

    # Kept, it is a top-ranked negative for open drawer: f6 (-), f0 (+), f3 (-), f1 (-), f2 (+)
    #   precision at the positives: 1/2, 2/5 -> AP = (1/2 + 2/5) / 2 = 0.45
    # and "ambiguous" itself is scored as a class (its only frame ranks first: AP 1).
    kept = per_frame_ap(y_true, scores, names)
    assert kept.per_class_ap == {
        "open drawer": pytest.approx(0.45),
        "close drawer": pytest.approx(AP_CLOSE),
        "ambiguous": pytest.approx(1.0),
    }
    assert kept.frames == 7

    dropped = per_frame_ap(y_true, scores, names, ignore_index=3)
    assert dropped.per_class_ap == {
        "open drawer": pytest.approx(AP_OPEN),
        "close drawer": pytest.approx(AP_CLOSE),
    }
    assert dropped.map == pytest.approx(19 / 24)
    assert dropped.frames == 6


def test_class_without_positive_is_skipped_not_averaged() -> None:
    names = (*NAMES, "open door")
    y_true = with_column(one_hot(LABELS, 3), np.zeros(6, dtype=np.int64))
    scores = with_column(SCORES, np.full(6, 0.5))
    # filterwarnings=error: sklearn would warn if the empty column reached it.
    result = per_frame_ap(y_true, scores, names)
    assert result.skipped == ["open door"]
    assert "open door" not in result.per_class_ap
    assert result.map == pytest.approx(19 / 24)


def test_no_scored_class_gives_nan() -> None:
    result = per_frame_ap(one_hot(np.zeros(4, dtype=np.int64), 3), np.full((4, 3), 0.3), NAMES)
    assert math.isnan(result.map)
    assert result.skipped == ["open drawer", "close drawer"]


def test_to_dict_is_plain() -> None:
    result = per_frame_ap(one_hot(LABELS, 3), SCORES, NAMES)
    data = result.to_dict()
    assert data == {
        "map": pytest.approx(19 / 24),
        "per_class_ap": {
            "open drawer": pytest.approx(AP_OPEN),
            "close drawer": pytest.approx(AP_CLOSE),
        },
        "skipped": [],
        "frames": 6,
    }
    assert type(data["map"]) is float


# --------------------------------------------------------------------------- calibrated AP


def test_calibrated_ap_matches_hand_computed_values() -> None:
    # Both classes: 2 positives, 4 negatives -> w = 4 / 2 = 2; cPrec = TP / (TP + FP / 2).
    # open drawer ranked +, -, -, +: cPrec 1/(1+0) = 1 and 2/(2 + 2/2) = 2/3 -> cAP = 5/6
    # close drawer ranked +, -, +:   cPrec 1 and 2/(2 + 1/2) = 4/5           -> cAP = 9/10
    # mcAP = (5/6 + 9/10) / 2 = 13/15
    result = per_frame_ap(one_hot(LABELS, 3), SCORES, NAMES, calibrated=True)
    assert result.per_class_ap == {
        "open drawer": pytest.approx(5 / 6),
        "close drawer": pytest.approx(9 / 10),
    }
    assert result.map == pytest.approx(13 / 15)


def naive_cap(positive: np.ndarray, score: np.ndarray) -> float:
    """The definition, frame by frame (valid for distinct scores)."""
    w = (positive.size - positive.sum()) / positive.sum()
    tp = fp = 0
    total = 0.0
    for k in np.argsort(-score):
        if positive[k]:
            tp += 1
            total += tp / (tp + fp / w)
        else:
            fp += 1
    return total / positive.sum()


def test_calibrated_ap_matches_definition_on_random_data() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        positive = rng.random(50) < 0.2
        positive[0] = True
        score = rng.random(50)  # distinct almost surely
        assert calibrated_average_precision(positive, score) == pytest.approx(
            naive_cap(positive, score)
        )


def test_calibrated_ap_equals_ap_when_balanced() -> None:
    # w = 1: cPrec is the ordinary precision, so cAP is sklearn's AP (ties included).
    rng = np.random.default_rng(1)
    for _ in range(20):
        positive = rng.permutation(np.r_[np.ones(20, bool), np.zeros(20, bool)])
        score = np.round(rng.random(40), 1)  # many ties
        assert calibrated_average_precision(positive, score) == pytest.approx(
            average_precision_score(positive, score)
        )


def test_calibrated_ap_ignores_order_of_tied_frames() -> None:
    positive = np.array([True, False, False, True, False, False, False])
    score = np.array([0.5, 0.5, 0.5, 0.2, 0.2, 0.9, 0.1])
    order = np.array([6, 3, 1, 5, 0, 4, 2])
    assert calibrated_average_precision(positive, score) == pytest.approx(
        calibrated_average_precision(positive[order], score[order])
    )


def test_calibrated_ap_without_negatives_is_one() -> None:
    assert calibrated_average_precision(np.ones(3, bool), np.array([0.1, 0.5, 0.2])) == 1.0


# --------------------------------------------------------------------------- accuracy


def test_frame_accuracy_ignores_ambiguous_frames() -> None:
    # argmax per frame: 1, 2, 1, 1, 2, 2 vs truth 1, 2, 1, 0, 2, 0 -> 4/6
    assert frame_accuracy(one_hot(LABELS, 3), SCORES) == pytest.approx(4 / 6)
    y_true = one_hot(np.r_[LABELS, 3], 4)
    scores = with_column(np.vstack([SCORES, [0.0, 0.95, 0.0]]), np.r_[np.zeros(6), 0.9])
    assert frame_accuracy(y_true, scores) == pytest.approx(4 / 7)  # frame 6: 1 vs 3
    assert frame_accuracy(y_true, scores, ignore_index=3) == pytest.approx(4 / 6)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("y_true", "y_score", "names", "message"),
    [
        (
            np.zeros((10, 5), dtype=np.int64),
            np.zeros((10, 4)),
            ("a",) * 5,
            "y_true has shape [10, 5], y_score [10, 4]: expected the same [frames, classes]",
        ),
        (
            np.zeros(10, dtype=np.int64),
            np.zeros(10),
            ("a",),
            "y_true has shape [10], y_score [10]: expected the same [frames, classes]",
        ),
        (
            one_hot(LABELS, 3),
            SCORES,
            NAMES[:2],
            "class_names has 2 names, y_true 3 classes: expected one name per class",
        ),
        (
            one_hot(LABELS, 3),
            np.where(np.eye(6, 3, dtype=bool), np.nan, SCORES),
            NAMES,
            "y_score has 3 NaN values: expected finite scores",
        ),
        (
            one_hot(LABELS, 3) * 2,
            SCORES,
            NAMES,
            "y_true must hold only 0 and 1",
        ),
    ],
)
def test_bad_inputs_raise(
    y_true: np.ndarray, y_score: np.ndarray, names: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        per_frame_ap(y_true, y_score, names)


def test_bad_index_raises() -> None:
    with pytest.raises(ValueError, match=re.escape("ignore_index 3 outside 0..2")):
        per_frame_ap(one_hot(LABELS, 3), SCORES, NAMES, ignore_index=3)


# --------------------------------------------------------------------------- segments


def test_to_segments_runs() -> None:
    labels = np.array([0, 0, 1, 1, 2, 0, 2, 2, 3])
    assert to_segments(labels) == [
        Segment(label=1, start=2, end=4),
        Segment(label=2, start=4, end=5),
        Segment(label=2, start=6, end=8),
        Segment(label=3, start=8, end=9),
    ]
    assert to_segments(labels, ignore_index=3) == to_segments(labels)[:3]
    assert to_segments(labels, background_index=None)[0] == Segment(label=0, start=0, end=2)
    assert to_segments(np.array([], dtype=np.int64)) == []
    with pytest.raises(ValueError, match=re.escape("labels has shape [2, 2]")):
        to_segments(np.zeros((2, 2), dtype=np.int64))


def test_segment_f1_perfect_prediction() -> None:
    truth = [np.array([0, 1, 1, 0, 2, 2, 2, 0]), np.array([3, 3, 0, 1])]
    assert segment_f1(truth, [t.copy() for t in truth]) == {0.1: 1.0, 0.25: 1.0, 0.5: 1.0}


def test_segment_f1_over_segmented_prediction() -> None:
    # One true segment [0, 10); the prediction breaks it into [0, 4) (IoU .4) and [6, 9) (IoU .3).
    # At .1 and .25: the first matches, the second finds no unmatched segment: TP 1, FP 1, FN 0
    #   -> P = 1/2, R = 1, F1 = 2/3. At .5: neither matches: TP 0 -> F1 = 0.
    truth = [np.ones(10, dtype=np.int64)]
    pred = [np.array([1, 1, 1, 1, 0, 0, 1, 1, 1, 0])]
    scores = segment_f1(truth, pred)
    assert scores == {0.1: pytest.approx(2 / 3), 0.25: pytest.approx(2 / 3), 0.5: 0.0}
    assert scores[0.5] < scores[0.1]


def test_segment_f1_empty_prediction_and_wrong_label() -> None:
    truth = [np.array([0, 1, 1, 1, 0])]
    assert segment_f1(truth, [np.zeros(5, dtype=np.int64)]) == {0.1: 0.0, 0.25: 0.0, 0.5: 0.0}
    assert segment_f1(truth, [np.array([0, 2, 2, 2, 0])], thresholds=(0.1,)) == {0.1: 0.0}


def test_segment_f1_sums_counts_over_videos() -> None:
    # Video A perfect (TP 1), video B predicts nothing (FN 1): P = 1, R = 1/2, F1 = 2/3.
    truth = [np.array([0, 1, 1, 0]), np.array([2, 2, 0, 0])]
    pred = [np.array([0, 1, 1, 0]), np.zeros(4, dtype=np.int64)]
    assert segment_f1(truth, pred, thresholds=(0.5,)) == {0.5: pytest.approx(2 / 3)}


def test_segment_f1_matches_like_ms_tcn() -> None:
    # Truth: label 1 at A = [0, 6) and B = [7, 10). Prediction: [0, 3) and [4, 8).
    # [0, 3) takes A (IoU 3/6). [4, 8) overlaps A most (IoU 2/8); A is taken, so — as in
    # MS-TCN's evaluation — it is a false positive, not re-matched to B (IoU 1/6):
    # TP 1, FP 1, FN 1 -> F1 = 1/2 at both thresholds.
    truth = [np.array([1, 1, 1, 1, 1, 1, 0, 1, 1, 1])]
    pred = [np.array([1, 1, 1, 0, 1, 1, 1, 1, 0, 0])]
    assert segment_f1(truth, pred, thresholds=(0.1, 0.2)) == {
        0.1: pytest.approx(1 / 2),
        0.2: pytest.approx(1 / 2),
    }


def test_segment_f1_ignores_ambiguous_truth() -> None:
    truth = [np.array([0, 1, 1, 0, 9, 9, 0])]
    pred = [np.array([0, 1, 1, 0, 0, 0, 0])]
    assert segment_f1(truth, pred, ignore_index=9, thresholds=(0.5,)) == {0.5: 1.0}
    assert segment_f1(truth, pred, thresholds=(0.5,)) == {0.5: pytest.approx(2 / 3)}


def test_segment_f1_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="true_labels has 1 videos, pred_labels 2"):
        segment_f1([np.zeros(3, dtype=np.int64)], [np.zeros(3, dtype=np.int64)] * 2)
    with pytest.raises(ValueError, match="video 0: true_labels has 3 frames, pred_labels 4"):
        segment_f1([np.zeros(3, dtype=np.int64)], [np.zeros(4, dtype=np.int64)])
    with pytest.raises(ValueError, match=re.escape("IoU threshold 1.5 outside [0, 1]")):
        segment_f1([], [], thresholds=(1.5,))
