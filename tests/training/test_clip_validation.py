"""Validation loss and the stop once it is flat for the clip task (training/validation.py):
held-out procedure videos as COIN's `validation` subset."""

import json
from pathlib import Path

import numpy as np
import pytest

from gad.cli import main
from model.checkpoint import load_checkpoint
from model.config import LoraSettings
from runtime.errors import ConfigError
from tests.training.test_train import config as tiny_config
from tests.training.test_validation import check_stopped_flat
from training.clips import collate_clips, load_clip_videos, open_clip_source
from training.data.coin import load_coin
from training.data.procedures import ProcedureConfig, write_procedure_dataset
from training.train import TrainConfig, _validation, clip_task, train
from training.validation import read_validation


@pytest.fixture(scope="module")
def procedures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("procedures-val") / "data"
    assert main(["data", "synth", "--procedures", "--out", str(root), "--train-videos", "12",
                 "--test-videos", "6", "--val-videos", "6"]) == 0  # fmt: skip
    return root


def config(data: Path, out: Path, **overrides: object) -> TrainConfig:
    """test_train's tiny run as a clip model, validated every 5 steps on `data`."""
    values: dict[str, object] = {
        "task": "clip",
        "clip_frames": 16,
        "lr": 3e-3,
        "lora": LoraSettings(rank=4, alpha=8, dropout=0.0),
        "log_every": 10,
        "val_data": data,
        "val_every": 5,
        "val_windows": 48,
    }
    return tiny_config(data, out, **(values | overrides))


def test_val_videos_are_coins_validation_subset_and_leave_train_and_test_as_they_were(
    procedures: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    write_procedure_dataset(plain, ProcedureConfig(videos_train=12, videos_test=6))
    coin, coin_plain = load_coin(procedures / "coin.json"), load_coin(plain / "coin.json")
    assert len(coin.split("val")) == 6 and not coin_plain.split("val")
    for split in ("train", "test"):
        assert coin.split(split) == coin_plain.split(split)
        source, source_plain = open_clip_source(procedures), open_clip_source(plain)
        for a, b in zip(
            load_clip_videos(source, split), load_clip_videos(source_plain, split), strict=True
        ):
            assert np.array_equal(a.features, b.features)
    assert (coin.step_names, coin.task_names) == (coin_plain.step_names, coin_plain.task_names)
    raw = json.loads((procedures / "coin.json").read_text())["database"]
    assert sum(v["subset"] == "validation" for v in raw.values()) == 6


@pytest.mark.integration
def test_clip_training_validates_on_held_out_clips_and_keeps_the_best(
    procedures: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    cfg = config(procedures, out, max_steps=200, patience=1, warmup_ratio=0.0, lr=3e-2)
    result = train(cfg)
    check_stopped_flat(result, out, every=5, budget=200)
    # The checkpoint is the best-validated model: its weights give that loss again, on the
    # held-out videos' step, task and next-step clips (all three questions).
    windows = _validation(cfg, clip_task(cfg))
    assert windows is not None and len(windows.items) == 48
    assert {item[3] for item in windows.items} == {0, 1, 2}
    losses = windows.losses(load_checkpoint(out / "checkpoint"), collate_clips, "cpu", 16)
    assert losses["val_loss"] == pytest.approx(result.best_val_loss, rel=1e-4)
    assert losses["val_loss"] == losses["cls_loss"] and losses["lm_loss"] > 0


def test_clip_validation_refuses_other_steps(procedures: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    write_procedure_dataset(other, ProcedureConfig(videos_train=2, videos_test=2))
    raw = json.loads((other / "coin.json").read_text())
    for video in raw["database"].values():
        for step in video["annotation"]:
            step["label"] = step["label"].upper()
    (other / "coin.json").write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match=r"its steps .* are not the training data.s"):
        train(config(procedures, tmp_path / "run", val_data=other))


@pytest.mark.integration
def test_compare_clip_table_says_where_each_row_stopped(procedures: Path, tmp_path: Path) -> None:
    out = tmp_path / "compare.md"
    argv = ["bench", "compare", "--task", "clip", "--data", str(procedures),
            "--kinds", "discriminative", "--runs", str(tmp_path / "runs"), "--backbone", "tiny",
            "--clip-frames", "16", "--max-steps", "10", "--batch-size", "16",
            "--lora-rank", "4", "--lora-alpha", "8", "--no-progress",
            "--val-data", str(procedures), "--val-every", "5", "--val-windows", "32",
            "--patience", "50", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    text = out.read_text()
    assert "Validation every 5 steps on 32 clips" in text and "best val loss @ step" in text
    row = next(line for line in text.splitlines() if line.startswith("| discriminative |"))
    last = read_validation(tmp_path / "runs" / "discriminative")[-1]  # the plateau's best so far
    assert f"| 10 | {last['best']:.4f} @ {last['best_step']}, budget |" in row
