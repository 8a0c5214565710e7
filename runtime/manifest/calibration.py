"""The manifest's "calibration": the temperature the package's class probabilities are
computed with (runtime/calibration.py), and what it was fitted on. Absent, T is 1: a
package exported before calibration existed loads and labels exactly as it did.

    "calibration": {"temperature": 1.7, "fitted_on": "mocap-val test split (20 videos)",
                    "frames": 6812, "optimum": 1.7, "min_temperature": 1.0, "threshold": 0.8,
                    "before": {"nll": 0.91, "ece": 0.08, "confident": 0.71,
                               "confident_wrong": 0.09},
                    "after":  {"nll": 0.74, "ece": 0.02, "confident": 0.52,
                               "confident_wrong": 0.04}}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from runtime.manifest.fields import (
    _emit_fields,
    _extra,
    _number,
    _object,
    _optional_int,
    _optional_str,
)
from runtime.manifest.schema import PackageError

# The figures a fit records for the held-out frames, before (T = 1) and after.
SCORE_KEYS = ("nll", "ece", "confident", "confident_wrong")


@dataclass(frozen=True)
class CalibrationSection:
    """Temperature scaling: every per-frame probability is softmax(logits / temperature)
    (window head and streaming step alike). `fitted_on` names the held-out data, `frames`
    how many frames it had; `optimum` is where its NLL is least, `min_temperature` the
    floor the fit was held to (temperature = max of the two); `before` / `after` its scores
    (SCORE_KEYS) at T = 1 and at T, `threshold` the probability above which a label
    counted as confident."""

    temperature: float
    fitted_on: str | None = None
    frames: int | None = None
    optimum: float | None = None
    min_temperature: float | None = None
    threshold: float | None = None
    before: Mapping[str, float] | None = None
    after: Mapping[str, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    FIELDS: ClassVar[tuple[str, ...]] = (
        "temperature",
        "fitted_on",
        "frames",
        "optimum",
        "min_temperature",
        "threshold",
        "before",
        "after",
    )

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise PackageError(
                f"calibration temperature must be a positive number, got {self.temperature}"
            )

    @classmethod
    def from_json(cls, data: object, where: str) -> CalibrationSection | None:
        if data is None:
            return None
        what = f"{where}: calibration"
        c = _object(data, what, "an object or null")
        return cls(
            temperature=_number(c.get("temperature"), f"{what} temperature"),
            fitted_on=_optional_str(c.get("fitted_on"), f"{what} fitted_on"),
            frames=_optional_int(c.get("frames"), f"{what} frames"),
            optimum=_optional_number(c.get("optimum"), f"{what} optimum"),
            min_temperature=_optional_number(c.get("min_temperature"), f"{what} min_temperature"),
            threshold=_optional_number(c.get("threshold"), f"{what} threshold"),
            before=_scores(c.get("before"), f"{what} before"),
            after=_scores(c.get("after"), f"{what} after"),
            extra=_extra(c, cls.FIELDS),
        )

    def to_json(self) -> dict[str, Any]:
        return _emit_fields(self, self.FIELDS, ("temperature",), self.extra)


def _optional_number(value: object, what: str) -> float | None:
    return None if value is None else _number(value, what)


def _scores(value: object, what: str) -> dict[str, float] | None:
    if value is None:
        return None
    scores = _object(value, what, "an object of numbers or null")
    return {key: _number(number, f"{what} {key}") for key, number in scores.items()}
