"""`gad train --resume` of a run that already finished: nothing to train, a clean exit, and
the checkpoint left exactly as it was (the loop's `step` was bound only inside the loop:
an UnboundLocalError, after the final save had rewritten the checkpoint with a NaN loss)."""

from pathlib import Path

import pytest

from gad.cli import main
from training.data.synth import SynthConfig, write_synth_dataset

STEPS = 3


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_resuming_a_finished_run_trains_nothing_and_keeps_its_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, run = tmp_path / "data", tmp_path / "run"
    write_synth_dataset(data, SynthConfig(videos_train=4, videos_test=1, feature_dim=16))
    args = [
        "train",
        str(data),
        "--out",
        str(run),
        "--kind",
        "gad",
        "--long",
        "4",
        "--short",
        "4",
        "--max-steps",
        str(STEPS),
        "--lora-rank",
        "4",
        "--lora-alpha",
        "8",
        "--no-progress",
    ]
    assert main(args) == 0
    assert f"{STEPS} steps in" in capsys.readouterr().out
    checkpoint = run / "checkpoint"
    before = files(checkpoint)
    assert "trainer_state.pt" in before and "trained.safetensors" in before

    assert main([*args, "--resume"]) == 0
    assert f"{STEPS} steps in" in capsys.readouterr().out
    assert files(checkpoint) == before
