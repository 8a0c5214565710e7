"""`python -m bench.streaming_accuracy`: windowed and streaming models trained on the same
budget, one table row per seed and mode, mean ± std and the 1-mAP verdict over seeds."""

import json
from pathlib import Path

import pytest

from bench.streaming_accuracy import NOT_BUILT, ModeRow, main, render_summary
from training.data.synth import SynthConfig, write_synth_dataset


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    write_synth_dataset(root, SynthConfig(videos_train=3, videos_test=1, feature_dim=16))
    return root


def _argv(data: Path, runs: Path, *extra: str) -> list[str]:
    return ["--data", str(data), "--runs", str(runs), "--long", "3", "--short", "2",
            "--crop", "12", "--max-steps", "2", "--batch-size", "2", "--lora-rank", "4",
            "--lora-alpha", "8", "--no-progress", *extra]  # fmt: skip


def _table_rows(text: str, first_cell: str) -> list[list[str]]:
    """The cells of the table rows whose first cell is `first_cell`."""
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in text.splitlines()]
    return [r for r in rows if r and r[0] == first_cell]


def test_both_modes_trained_on_one_budget_per_seed(synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "table.md"
    argv = _argv(synth, tmp_path / "runs", "--seed", "0", "--seed", "1", "--out", str(out))
    assert main(argv) == 0
    text = out.read_text()
    for seed in ("0", "1"):
        rows = _table_rows(text, seed)
        assert [(r[1], r[2]) for r in rows] == [("windowed", "3+2"), ("streaming", "5")]
        for row in rows:
            assert all(0.0 <= float(cell) <= 100.0 for cell in row[3:6])  # mAP, mcAP, acc
            assert float(row[6]) >= 0 and int(row[7]) == 2  # train s, steps
        windowed, streaming = (int(r[8].replace(",", "")) for r in rows)
        assert windowed == 2 * 2  # one labelled frame per window, batch 2, 2 steps
        assert streaming > windowed  # crops: every frame with a full window is supervised
        metrics = tmp_path / "runs" / f"seed-{seed}" / "streaming" / "eval" / "metrics.json"
        assert json.loads(metrics.read_text())["map"] == pytest.approx(
            float(rows[1][3]) / 100, abs=5e-4
        )
    summary = {r[0]: r for r in _table_rows(text, "windowed") + _table_rows(text, "streaming")}
    assert "±" in summary["windowed"][2] and "±" in summary["streaming"][2]
    assert "Rule (within 1 mAP or better)" in text
    saved = json.loads((tmp_path / "runs" / "rows.json").read_text())
    assert [(r["seed"], r["mode"]) for r in saved] == [
        (0, "windowed"),
        (0, "streaming"),
        (1, "windowed"),
        (1, "streaming"),
    ]


def test_gad_streaming_is_a_row_either_trained_or_not_built(synth: Path, tmp_path: Path) -> None:
    assert main(_argv(synth, tmp_path, "--kind", "gad", "--modes", "windowed,streaming")) == 0
    text = (tmp_path / "table.md").read_text()
    windowed, streaming = _table_rows(text, "0")
    assert 0.0 <= float(windowed[3]) <= 100.0
    if streaming[3].startswith(NOT_BUILT):  # the trainer's refusal, with its reason
        assert "LM loss" in streaming[3]
        assert not (tmp_path / "seed-0" / "streaming" / "eval").exists()
    else:  # streaming GAD has landed: a measured row
        assert 0.0 <= float(streaming[3]) <= 100.0


def test_a_mode_not_built_gives_no_verdict() -> None:
    rows = [
        ModeRow(0, "windowed", "3+2", 0.5, 0.9, 0.7, 1.0, 2, 4),
        ModeRow(0, "streaming", "5", note=f"{NOT_BUILT}: no LM loss yet"),
    ]
    text = render_summary(rows)
    assert "| streaming | 5 | not built |" in text
    assert "no comparison" in text and "Rule" not in text
    rows[1] = ModeRow(0, "streaming", "5", 0.485, 0.9, 0.7, 1.0, 2, 40)
    assert "-1.5" in render_summary(rows) and "**not met**" in render_summary(rows)
    rows[1] = ModeRow(0, "streaming", "5", 0.495, 0.9, 0.7, 1.0, 2, 40)
    assert "**met**" in render_summary(rows)
