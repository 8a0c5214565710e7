from pathlib import Path

import pytest

from gad.cli import main

SMALL = ["--backbone", "tiny", "--feature-dim", "8", "--repeats", "1"]


def test_bench_engine_prints_both_lora_states(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "engine.md"
    # --merged is accepted from old command lines; both states are timed either way.
    argv = ["bench", "engine", *SMALL, "--long", "4", "--short", "4", "--no-onnx", "--merged"]
    assert main([*argv, "--out", str(out)]) == 0
    text = out.read_text()
    assert "| tiny | 1 | adapters |" in text and "| tiny | 1 | merged |" in text
    assert text.strip() in capsys.readouterr().out


def test_bench_clip_prints_per_answer_then_batched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "clip.md"
    assert main(["bench", "clip", *SMALL, "--clip-frames", "4", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.index("**Per answer, like with like**") < text.index("**Batched three-question")
    assert "| tiny | merged | step question |" in text
    assert text.strip() in capsys.readouterr().out


def test_bench_engine_step_rows_set_step_onnx_beside_head_onnx(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "engine.md"
    argv = ["bench", "engine", *SMALL, "--long", "4", "--short", "4", "--batch", "2", "--step"]
    assert main([*argv, "--out", str(out)]) == 0
    text = out.read_text()
    step = text[text.index("**Streaming step**") :]
    assert "head.onnx vs step.onnx, LoRA merged on both sides" in step
    row = next(line for line in step.splitlines() if line.startswith("| tiny | onnxruntime |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:4] == ["8", "2"]  # window long + short, the engine batch
    window_ms, step_ms = float(cells[4]), float(cells[5])
    ratio = float(cells[7].removesuffix("×"))  # of the unrounded medians
    assert window_ms > 0 and step_ms > 0 and ratio == pytest.approx(window_ms / step_ms, rel=0.2)
    capsys.readouterr()
