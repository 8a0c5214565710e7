"""`gad train --task clip --clip-tokens-per-frame K`: the flag reaches the model config,
and `gad eval` / `gad export` read the k-token model (clip.onnx says how it reads a row)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gad.cli import main
from model.checkpoint_info import read_checkpoint_info
from runtime.manifest import read_package
from training.data.procedures import ProcedureConfig, write_procedure_dataset

pytestmark = pytest.mark.integration  # gad train, eval and export on the command line


def test_cli_trains_evaluates_and_exports_a_k_token_clip_model(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_procedure_dataset(data, ProcedureConfig(videos_train=4, videos_test=2))
    run = tmp_path / "run"
    args = ["train", str(data), "--task", "clip", "--out", str(run), "--backbone", "tiny",
            "--lora-rank", "4", "--lora-alpha", "8", "--no-progress", "--max-steps", "2",
            "--batch-size", "4", "--clip-frames", "64", "--clip-tokens-per-frame", "2"]  # fmt: skip
    assert main(args) == 0
    config = read_checkpoint_info(run / "checkpoint").config
    assert (config.clip_frames, config.tokens_per_frame, config.frame_separator) == (64, 2, ",")
    assert main(["eval", str(run), "--data", str(data)]) == 0
    assert json.loads((run / "eval" / "metrics.json").read_text())["task"]["clips"] == 2
    assert main(["export", str(run), "--out", str(tmp_path / "models")]) == 0
    clip = read_package(tmp_path / "models" / "run" / "1").clip
    assert clip is not None and clip.verify is not None
    assert clip.tokens_per_frame == 2 and clip.verify.max_abs_diff < 1e-3
