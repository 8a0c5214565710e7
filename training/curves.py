"""A training run's learning curve, for the comparison tables (issue 29: "report with
learning curves"): at each validation, the training losses averaged over the steps logged
since the previous one, and the validation losses.

Read from the run folder (`log.jsonl`, `val_log.jsonl`), written as a Markdown table under
the comparison's own (so a committed table keeps its curve after `runs/` is gone), and read
back from that Markdown to plot. The validation whose checkpoint the table evaluated is
marked (with a patience, the last that gained its minimum: not always the lowest loss). A
resumed run logs the steps after its checkpoint again: the later record of a step is the
one kept."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from training.validation import read_jsonl, read_validation

TRAIN_LOG = "log.jsonl"  # the training loop's log: a line every --log-every steps
VALUES = ("train loss", "train CE", "train LM", "val loss", "val CE", "val LM")
COLUMNS = ("step", *VALUES, "evaluated")
KEPT = "✓"  # the "evaluated" cell of the validation whose checkpoint the table evaluated
HEADING = "Learning curve: "


@dataclass(frozen=True)
class CurvePoint:
    step: int
    train_loss: float | None
    train_cls: float | None
    train_lm: float | None
    val_loss: float | None
    val_cls: float | None
    val_lm: float | None
    kept: bool = False  # the checkpoint evaluated (tables written before 2026-12-07: none)

    @property
    def watched(self) -> float | None:
        """The validation loss training watched: the [CLS] CE where there is a head."""
        return self.val_cls if self.val_cls is not None else self.val_loss

    @property
    def train_watched(self) -> float | None:
        return self.train_cls if self.val_cls is not None else self.train_loss

    def cells(self) -> tuple[float | None, ...]:
        return (self.train_loss, self.train_cls, self.train_lm,
                self.val_loss, self.val_cls, self.val_lm)  # fmt: skip


def learning_curve(run: Path, evaluated: int | None = None) -> tuple[CurvePoint, ...]:
    """The run's curve, one point per validation, the `evaluated` step's marked; () when it
    was not validated."""
    validations = _last_per_step(read_validation(run))
    if not validations:
        return ()
    train = _last_per_step(read_jsonl(run / TRAIN_LOG))
    logged_steps = sorted(train)
    points, previous = [], 0
    for step in sorted(validations):
        logged = [train[s] for s in logged_steps if previous < s <= step]
        v = validations[step]
        points.append(
            CurvePoint(
                step=step,
                train_loss=_mean(logged, "loss"),
                train_cls=_mean(logged, "cls_loss"),
                train_lm=_mean(logged, "lm_loss"),
                val_loss=v.get("loss"),
                val_cls=v.get("cls_loss"),
                val_lm=v.get("lm_loss"),
                kept=step == evaluated,
            )
        )
        previous = step
    return tuple(points)


def curves_markdown(curves: Mapping[str, Sequence[CurvePoint]]) -> list[str]:
    """Each named curve as a folded Markdown table (empty curves left out)."""
    lines: list[str] = []
    for name, points in curves.items():
        if not points:
            continue
        lines += [
            "",
            f"<details><summary>{HEADING}{name} (train: the mean of the steps logged since "
            "the previous validation)</summary>",
            "",
            "| " + " | ".join(COLUMNS) + " |",
            "|" + "---:|" * len(COLUMNS),
        ]
        for p in points:
            cells = ["—" if c is None else f"{c:.4f}" for c in p.cells()]
            lines.append(f"| {p.step} | " + " | ".join(cells) + f" | {KEPT if p.kept else ''} |")
        lines += ["", "</details>"]
    return lines


def parse_curves(text: str) -> dict[str, tuple[CurvePoint, ...]]:
    """The curves a comparison table holds, by name (what `curves_markdown` wrote)."""
    curves: dict[str, tuple[CurvePoint, ...]] = {}
    for block in re.split(r"<summary>" + re.escape(HEADING), text)[1:]:
        name = block.split(" (train:", 1)[0]
        rows = [line for line in block.split("</details>", 1)[0].splitlines()
                if line.startswith("| ") and line[2:3].isdigit()]  # fmt: skip
        points = []
        for row in rows:
            cells = [c.strip() for c in row.strip("|").split("|")]
            values = [None if c == "—" else float(c) for c in cells[1 : 1 + len(VALUES)]]
            points.append(CurvePoint(int(cells[0]), *values, kept=cells[-1] == KEPT))
        curves[name] = tuple(points)
    return curves


def _last_per_step(records: list[dict]) -> dict[int, dict]:
    """By step, the last record of each (a line without a step, not the loop's, is passed
    over)."""
    return {int(r["step"]): r for r in records if "step" in r}


def _mean(records: list[dict], key: str) -> float | None:
    values = [r[key] for r in records if r.get(key) is not None]
    return sum(values) / len(values) if values else None


__all__ = [
    "TRAIN_LOG",
    "CurvePoint",
    "curves_markdown",
    "learning_curve",
    "parse_curves",
]
