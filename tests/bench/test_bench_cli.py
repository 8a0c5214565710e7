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
