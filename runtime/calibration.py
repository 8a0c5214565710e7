"""Calibrated class probabilities: temperature scaling, and how to measure it. numpy only.

A classifier's softmax is often over-confident on data unlike its training data (on a real
camera the pose demo said "kick 90 %" of a man doing jumping jacks). Temperature scaling
(Guo et al. 2017) divides the logits by one number T > 0 fitted on held-out frames by
minimising their negative log-likelihood: T > 1 softens every distribution, T < 1 sharpens
it, the argmax (the label) never changes. A package records its T in the manifest
(`calibration`, runtime/manifest/calibration.py); absent, T = 1.

    probs = softmax(logits, temperature)            # what every engine returns
    t = fit_temperature(logits, labels)             # held-out logits [N, C], labels [N]
    fit = calibrate(logits, labels)                 # T; NLL, ECE, confident-wrong before/after

Probabilities work wherever logits are asked for (`log_probs`): log p differs from the
logits by a constant per row, which softmax ignores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CONFIDENT = 0.8  # "a confident label": its probability above this
ECE_BINS = 15
T_RANGE = (0.05, 20.0)  # the search interval for T


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / temperature) over the last axis (the one place the served models
    turn logits into probabilities: runtime/engine.py and runtime/stepping.py call it)."""
    logits = np.asarray(logits)
    if temperature != 1.0:
        check_temperature(temperature)
        logits = logits / np.asarray(temperature, dtype=logits.dtype)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    probs: np.ndarray = exp / exp.sum(axis=-1, keepdims=True)
    return probs


def check_temperature(temperature: float) -> float:
    if not (isinstance(temperature, int | float) and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a finite number, got {temperature!r}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return float(temperature)


def log_probs(probs: np.ndarray, floor: float = 1e-12) -> np.ndarray:
    """Logits that give back `probs` [N, C] under softmax (log p, floored at `floor`)."""
    return np.log(np.maximum(np.asarray(probs, np.float64), floor))


def _checked(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels)
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits must be [frames, classes >= 2], got {list(logits.shape)}")
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"labels must be [{logits.shape[0]}], got {list(labels.shape)}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be class indices, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"labels must lie in [0, {logits.shape[1]}): drop ignored frames first")
    if not np.isfinite(logits).all():
        raise ValueError("logits contain NaN or infinity")
    return logits, labels.astype(np.int64)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of `labels` [N] under softmax(logits [N, C] / T)."""
    logits, labels = _checked(logits, labels)
    if not len(labels):
        return float("nan")
    z = logits / check_temperature(temperature)
    top = z.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
    return float(np.mean(lse - z[np.arange(len(labels)), labels]))


def fit_temperature(
    logits: np.ndarray, labels: np.ndarray, *, bounds: tuple[float, float] = T_RANGE
) -> float:
    """The T within `bounds` that minimises `nll` of held-out `labels` [N] under `logits`
    [N, C] (or `log_probs` of probabilities). NLL is convex in 1/T, so one minimum: a grid
    over log T brackets it, golden-section search refines it. 1 for no frames."""
    logits, labels = _checked(logits, labels)
    lo, hi = (math.log(check_temperature(b)) for b in bounds)
    if not len(labels) or lo >= hi:
        return 1.0

    def loss(log_t: float) -> float:
        return nll(logits, labels, math.exp(log_t))

    grid = np.linspace(lo, hi, 41)
    losses = [loss(float(x)) for x in grid]
    best = int(np.argmin(losses))
    a, b = float(grid[max(best - 1, 0)]), float(grid[min(best + 1, len(grid) - 1)])
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = loss(c), loss(d)
    while b - a > 1e-5:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    return math.exp((a + b) / 2)


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: |accuracy − confidence| of the top class, averaged over
    `bins` equal-width confidence bins weighted by their frames (0 = calibrated)."""
    probs, labels = _checked(probs, labels)
    if not len(labels):
        return float("nan")
    top = probs.max(axis=1)
    right = probs.argmax(axis=1) == labels
    which = np.minimum((top * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in np.unique(which):
        inside = which == b
        total += inside.sum() * abs(right[inside].mean() - top[inside].mean())
    return float(total / len(labels))


@dataclass(frozen=True)
class Confidence:
    """How often a confident label (top probability > threshold) is wrong, of N frames:
    `confident_wrong` (share of all frames: confident and wrong), `confident` (share of all
    frames: confident at all), `wrong_when_confident` (share of the confident ones)."""

    frames: int
    confident: float
    confident_wrong: float
    threshold: float = CONFIDENT

    @property
    def wrong_when_confident(self) -> float:
        return self.confident_wrong / self.confident if self.confident else float("nan")


def confidence(
    probs: np.ndarray,
    labels: np.ndarray,
    threshold: float = CONFIDENT,
    *,
    wrong: np.ndarray | None = None,
) -> Confidence:
    """`Confidence` of probabilities [N, C] against `labels` [N]. `wrong` [N] bool, when
    given, says which frames' top classes count as wrong instead of `argmax != label`
    (e.g. only a confident *action* on out-of-vocabulary motion)."""
    probs, labels = _checked(probs, labels)
    top = probs.max(axis=1)
    sure = top > threshold
    if wrong is None:
        wrong = probs.argmax(axis=1) != labels
    n = len(labels)
    if not n:
        return Confidence(0, float("nan"), float("nan"), threshold)
    return Confidence(n, float(sure.mean()), float((sure & wrong).mean()), threshold)


@dataclass(frozen=True)
class Scores:
    """One set of probabilities measured: mean NLL, ECE, and `Confidence`."""

    nll: float
    ece: float
    confidence: Confidence


def measure(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> Scores:
    probs = softmax(np.asarray(logits, np.float64), temperature)
    return Scores(nll(logits, labels, temperature), ece(probs, labels), confidence(probs, labels))


@dataclass(frozen=True)
class Fit:
    """A fitted temperature and the held-out frames' scores before (T = 1) and after.
    `optimum` is the NLL's own minimum; `temperature` the one applied: the optimum, or
    `min_temperature` where that floor lies above it."""

    temperature: float
    frames: int
    before: Scores
    after: Scores
    optimum: float
    min_temperature: float | None = None


def calibrate(
    logits: np.ndarray, labels: np.ndarray, *, min_temperature: float | None = None
) -> Fit:
    """Fit T on held-out `logits` [N, C] and `labels` [N]; the scores before and after.
    `min_temperature` (e.g. 1: never sharpen) floors it: NLL has one minimum in T, so the
    best T at or above the floor is the larger of the two."""
    optimum = fit_temperature(logits, labels)
    temperature = optimum
    if min_temperature is not None:
        temperature = max(optimum, check_temperature(min_temperature))
    return Fit(
        temperature,
        len(labels),
        measure(logits, labels),
        measure(logits, labels, temperature),
        optimum,
        min_temperature,
    )
