"""Temperature scaling and its measures (runtime/calibration.py), as pure functions: an
over-confident model needs T > 1 and gets better ECE and fewer confident mistakes, a
calibrated one gets T = 1 back, T never changes a label."""

from __future__ import annotations

import math

import numpy as np
import pytest

from runtime.calibration import (
    calibrate,
    confidence,
    ece,
    fit_temperature,
    log_probs,
    nll,
    softmax,
)
from runtime.engine import softmax as engine_softmax


def sampled(n: int = 20_000, classes: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits [n, C] and labels drawn from softmax(logits): calibrated by construction."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, (n, classes))
    probs = softmax(logits)
    labels = (probs.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return logits, labels


def test_softmax_temperature() -> None:
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    assert np.allclose(softmax(logits), engine_softmax(logits))
    assert np.allclose(softmax(logits, 2.0), engine_softmax(logits / 2.0))
    assert np.allclose(softmax(logits, 1.0), softmax(logits))
    hot, cool = softmax(logits, 0.5), softmax(logits, 4.0)
    assert (hot.max(axis=1) > softmax(logits).max(axis=1)).all()
    assert (cool.max(axis=1) < softmax(logits).max(axis=1)).all()
    # the label never changes
    assert (hot.argmax(axis=1) == cool.argmax(axis=1)).all()
    assert np.allclose(softmax(logits.astype(np.float32), 3.0).sum(axis=1), 1.0)
    assert softmax(logits.astype(np.float32), 3.0).dtype == np.float32
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="temperature"):
            softmax(logits, bad)


def test_calibrated_scores_give_t_one() -> None:
    logits, labels = sampled()
    assert fit_temperature(logits, labels) == pytest.approx(1.0, abs=0.05)


def test_over_confident_scores_need_t_above_one() -> None:
    logits, labels = sampled()
    sharp = 3.0 * logits  # the same ranking, three times too sure
    t = fit_temperature(sharp, labels)
    assert t == pytest.approx(3.0, rel=0.05)
    fit = calibrate(sharp, labels)
    assert fit.temperature == pytest.approx(t)
    assert fit.frames == len(labels)
    assert fit.after.nll < fit.before.nll
    assert fit.after.ece < fit.before.ece / 3
    assert fit.after.confidence.confident_wrong < fit.before.confidence.confident_wrong
    assert fit.after.confidence.confident < fit.before.confidence.confident
    # NLL at the fitted T is the minimum
    for other in (0.8 * t, 1.25 * t):
        assert nll(sharp, labels, other) > nll(sharp, labels, t)


def test_under_confident_scores_need_t_below_one() -> None:
    logits, labels = sampled()
    assert fit_temperature(logits / 2.0, labels) == pytest.approx(0.5, rel=0.05)


def test_a_floor_keeps_t_from_sharpening() -> None:
    logits, labels = sampled(5_000)
    fit = calibrate(logits / 2.0, labels, min_temperature=1.0)
    assert fit.optimum == pytest.approx(0.5, rel=0.05)
    assert fit.temperature == 1.0 and fit.min_temperature == 1.0
    assert fit.after == fit.before  # T = 1: nothing changes
    sharp = calibrate(3.0 * logits, labels, min_temperature=1.0)  # above the floor: the optimum
    assert sharp.temperature == sharp.optimum == pytest.approx(3.0, rel=0.05)


def test_fit_from_probabilities() -> None:
    """log p stands in for logits: the same T."""
    logits, labels = sampled(5_000)
    sharp = 2.5 * logits
    from_probs = fit_temperature(log_probs(softmax(sharp)), labels)
    assert from_probs == pytest.approx(fit_temperature(sharp, labels), rel=1e-3)


def test_fit_is_bounded_and_handles_no_frames() -> None:
    logits, labels = sampled(2_000)
    assert fit_temperature(logits[:0], labels[:0]) == 1.0
    # always right: NLL keeps falling as T shrinks (to nothing), so T ends near the bound
    right = np.eye(4)[labels % 4] * 5.0
    assert 0.1 <= fit_temperature(right, labels % 4, bounds=(0.1, 10.0)) < 0.15


def test_ece() -> None:
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.9, 0.1]])
    # one bin at 0.9 confidence, half right: |0.5 - 0.9|
    assert ece(probs, labels) == pytest.approx(0.4)
    exact = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert ece(exact, labels) == pytest.approx(0.0)
    logits, sampled_labels = sampled()
    assert ece(softmax(logits), sampled_labels) < 0.02


def test_confidence() -> None:
    labels = np.array([0, 1, 2, 2, 0])
    probs = np.array(
        [
            [0.85, 0.1, 0.05],  # confident, right
            [0.9, 0.05, 0.05],  # confident, wrong
            [0.3, 0.3, 0.4],  # unsure, right
            [0.5, 0.4, 0.1],  # unsure, wrong
            [0.8, 0.1, 0.1],  # exactly 0.8: not above it
        ]
    )
    c = confidence(probs, labels)
    assert c.frames == 5
    assert c.confident == pytest.approx(2 / 5)
    assert c.confident_wrong == pytest.approx(1 / 5)
    assert c.wrong_when_confident == pytest.approx(1 / 2)
    assert confidence(probs, labels, 0.5).confident == pytest.approx(3 / 5)
    # only some mistakes count (e.g. a confident action on out-of-vocabulary motion)
    only_first = np.array([True, False, False, False, False])
    assert confidence(probs, labels, wrong=only_first).confident_wrong == pytest.approx(1 / 5)
    assert math.isnan(confidence(probs[:0], labels[:0]).confident)


@pytest.mark.parametrize(
    ("logits", "labels", "match"),
    [
        (np.zeros((3,)), np.zeros(3, int), "logits must be"),
        (np.zeros((3, 2)), np.zeros(2, int), "labels must be"),
        (np.zeros((3, 2)), np.array([0, 1, 2]), "drop ignored"),
        (np.zeros((3, 2)), np.array([0, -1, 1]), "drop ignored"),
        (np.zeros((3, 2)), np.zeros(3), "class indices"),
        (np.full((3, 2), np.nan), np.zeros(3, int), "NaN"),
    ],
)
def test_bad_inputs(logits: np.ndarray, labels: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        nll(logits, labels)


# --- where T lives: the manifest's "calibration", applied by the engines ---------------------


def test_the_manifest_section_reads_and_writes() -> None:
    from runtime.manifest import CalibrationSection, PackageError

    data = {
        "temperature": 1.5,
        "fitted_on": "mocap-val test split (20 videos)",
        "frames": 6868,
        "optimum": 0.95,
        "min_temperature": 1.0,
        "threshold": 0.8,
        "before": {"nll": 0.5, "ece": 0.03, "confident": 0.67, "confident_wrong": 0.02},
        "after": {"nll": 0.5, "ece": 0.03, "confident": 0.67, "confident_wrong": 0.02},
        "later": "kept",
    }
    section = CalibrationSection.from_json(data, "m")
    assert section is not None and section.temperature == 1.5
    assert section.extra == {"later": "kept"}
    assert section.to_json() == data
    assert CalibrationSection.from_json(None, "m") is None
    assert CalibrationSection(2.0).to_json() == {"temperature": 2.0}
    for bad in ({"temperature": 0}, {"temperature": -1.0}, {"temperature": "2"}, {}):
        with pytest.raises(PackageError, match="temperature"):
            CalibrationSection.from_json(bad, "m")
    with pytest.raises(PackageError, match="before"):
        CalibrationSection.from_json({"temperature": 1.0, "before": {"nll": "x"}}, "m")
