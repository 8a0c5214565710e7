"""Validation loss during training and the stop once it is flat (training/validation.py)."""

import json
from pathlib import Path

import pytest
import torch

from gad.cli import main
from model.checkpoint import load_checkpoint
from model.config import LoraSettings
from runtime.errors import ConfigError
from tests.training.test_train import config as tiny_config
from training.data.synth import SynthConfig, write_synth_dataset
from training.data_info import load_data_info
from training.train import (
    LAST_DIR,
    STATE_FILE,
    TrainConfig,
    TrainResult,
    _validation,
    collate,
    frame_task,
    resume_point,
    train,
)
from training.validation import Plateau, ValSettings, log_validation, read_validation


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth-val")
    write_synth_dataset(
        root, SynthConfig(videos_train=8, videos_test=2, videos_val=3, feature_dim=16)
    )
    return root


def config(data: Path, out: Path, **overrides: object) -> TrainConfig:
    """test_train's tiny run, smaller still, validated every 5 steps on `data`."""
    values: dict[str, object] = {
        "long_frames": 4,
        "short_frames": 4,
        "lr": 3e-3,
        "lora": LoraSettings(rank=4, alpha=8, dropout=0.0),
        "log_every": 10,
        "val_data": data,
        "val_every": 5,
        "val_windows": 64,
    }
    return tiny_config(data, out, **(values | overrides))


def test_val_videos_are_a_split_of_their_own_and_leave_train_and_test_as_they_were(
    synth: Path, tmp_path: Path
) -> None:
    info = load_data_info(synth)
    assert len(info.val_sessions) == 3
    assert not set(info.val_sessions) & (set(info.train_sessions) | set(info.test_sessions))
    plain = tmp_path / "plain"
    write_synth_dataset(plain, SynthConfig(videos_train=8, videos_test=2, feature_dim=16))
    assert not load_data_info(plain).val_sessions
    for session in (*info.train_sessions, *info.test_sessions):
        for folder in ("features", "target_perframe"):
            name = f"{folder}/{session}.npy"
            assert (synth / name).read_bytes() == (plain / name).read_bytes(), name


def test_plateau_counts_validations_without_a_real_improvement() -> None:
    plateau = Plateau(ValSettings(Path("."), every=5, patience=2, min_delta=0.01))
    assert plateau.update(5, 1.0) and plateau.best_step == 5
    assert not plateau.update(10, 0.995)  # 0.5 % lower: not an improvement of > 1 %
    assert not plateau.flat
    assert plateau.update(15, 0.9) and plateau.since == 0
    assert not plateau.update(20, 0.95) and not plateau.update(25, 0.91)
    assert plateau.flat and plateau.best == 0.9 and plateau.best_step == 15


@pytest.mark.integration
def test_validation_is_logged_and_training_stops_at_the_best_checkpoint(
    synth: Path, tmp_path: Path
) -> None:
    # Patience 1 with a constant learning rate far too high for the task's end: the run stops
    # as soon as a validation fails to improve, long before its 400 steps.
    out = tmp_path / "run"
    result = train(config(synth, out, max_steps=400, patience=1, warmup_ratio=0.0, lr=3e-2))
    curve = check_stopped_flat(result, out, every=5, budget=400)
    assert curve[-1]["since"] == 1 and result.best_step < result.steps
    # The checkpoint is the model at the best validation: its weights give that loss again;
    # where training stopped is kept beside it (RUN/last), marked with the patience.
    assert _state(out / "checkpoint")["step"] == result.best_step
    stop = _state(out / LAST_DIR)
    assert stop["step"] == result.steps and stop["stopped_flat"] == 1
    model = load_checkpoint(out / "checkpoint")
    again = config(synth, tmp_path / "again", max_steps=1)
    windows = _validation(again, frame_task(again))
    losses = windows.losses(model, collate, "cpu", 16)
    assert losses["val_loss"] == pytest.approx(result.best_val_loss, rel=1e-4)
    # GAD: what is watched is the served head's CE; the LM loss is logged beside it.
    assert losses["val_loss"] == losses["cls_loss"] and losses["lm_loss"] > 0
    assert losses["loss"] == pytest.approx(losses["cls_loss"] + losses["lm_loss"], rel=1e-4)
    # --resume of a run that stopped flat trains nothing more.
    resumed = train(config(synth, out, max_steps=400, patience=1, warmup_ratio=0.0, lr=3e-2,
                           resume=True))  # fmt: skip
    assert resumed.steps == result.steps and read_validation(out) == curve
    # A larger patience trains on from where it stopped: no step is trained or validated twice.
    longer = train(config(synth, out, max_steps=400, patience=2, warmup_ratio=0.0, lr=3e-2,
                          resume=True))  # fmt: skip
    again_curve = read_validation(out)[len(curve) :]
    assert again_curve[0]["step"] == result.steps + 5 and longer.steps > result.steps
    assert longer.stopped_flat or longer.steps == 400
    assert _state(out / "checkpoint")["step"] == longer.best_step


@pytest.mark.integration
def test_the_best_checkpoint_survives_an_interrupt_and_resume_goes_on_from_where_it_was(
    synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C during the 4th validation: the checkpoint stays the best-validated model, the
    # position goes to RUN/last.
    out, logged = tmp_path / "run", []

    def interrupt_at_step_20(folder: Path, row: dict[str, object]) -> None:
        logged.append(row)
        if row["step"] == 20:
            raise KeyboardInterrupt
        log_validation(folder, row)

    monkeypatch.setattr("training.train.log_validation", interrupt_at_step_20)
    run = dict(max_steps=40, patience=20, warmup_ratio=0.0, lr=3e-2)
    with pytest.raises(KeyboardInterrupt):
        train(config(synth, out, **run))
    monkeypatch.undo()
    # (Interrupted between the plateau's update and the save: a best step 20 is saved too.)
    assert _state(out / "checkpoint")["step"] == logged[-1]["best_step"]
    assert _state(out / LAST_DIR)["step"] == 20
    point = resume_point(out)
    assert point is not None and point[0] == out / LAST_DIR and point[1]["step"] == 20
    # --resume: steps 21-40, validated at 25, 30, ... (step 20's validation was cut short).
    result = train(config(synth, out, resume=True, **run))
    assert result.steps == 40 and not result.stopped_flat
    assert [r["step"] for r in read_validation(out)] == [5, 10, 15, 25, 30, 35, 40]
    # The budget ran out: the checkpoint is the best model, last the position at step 40.
    assert _state(out / "checkpoint")["step"] == result.best_step
    assert _state(out / LAST_DIR)["step"] == 40
    # A larger budget goes on from step 40 (a finished budget trains nothing more).
    assert train(config(synth, out, resume=True, **run)).steps == 40
    longer = train(config(synth, out, resume=True, **(run | {"max_steps": 50})))
    assert longer.steps == 50 and read_validation(out)[-2]["step"] == 45


def check_stopped_flat(result: TrainResult, out: Path, *, every: int, budget: int) -> list:
    """A patience-1 run stopped flat before its budget, validated every `every` steps; its
    result names the plateau's best validation. The validation curve."""
    curve = read_validation(out)
    assert result.stopped_flat and result.steps < budget
    assert [r["step"] for r in curve] == list(range(every, result.steps + 1, every))
    # (The best is the plateau's: a later loss lower by under 0.5 % does not replace it.)
    best = next(r for r in curve if r["step"] == curve[-1]["best_step"])
    assert (result.best_step, result.best_val_loss) == (best["step"], best["val_loss"])
    assert all(r["val_loss"] >= best["val_loss"] * (1 - 0.005) for r in curve)
    return curve


def _state(folder: Path) -> dict[str, object]:
    return torch.load(folder / STATE_FILE, weights_only=False)


@pytest.mark.integration
def test_cli_validates_on_another_dataset_of_the_same_classes(synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    argv = ["train", str(synth), "--out", str(out), "--long", "4", "--short", "4",
            "--max-steps", "10", "--batch-size", "16", "--lora-rank", "4", "--lora-alpha", "8",
            "--no-progress", "--val-data", str(synth), "--val-every", "5",
            "--val-split", "test", "--val-windows", "32"]  # fmt: skip
    assert main(argv) == 0
    curve = read_validation(out)
    assert [r["step"] for r in curve] == [5, 10]
    assert all(r["val_loss"] > 0 for r in curve)
    assert json.loads((out / "train_config.json").read_text())["val_split"] == "test"


def test_validation_refuses_what_it_cannot_do(synth: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="need --val-data"):
        train(config(synth, tmp_path / "a", val_data=None, patience=3))
    with pytest.raises(ConfigError, match="--val-every"):
        train(config(synth, tmp_path / "b", val_every=0))
    with pytest.raises(ConfigError, match="window attention"):
        train(config(synth, tmp_path / "c", attention="streaming", stream_window=8))
    other = tmp_path / "other"
    write_synth_dataset(other, SynthConfig(videos_train=2, videos_test=1, feature_dim=16))
    info = json.loads((other / "data_info.json").read_text())
    info["SYNTH"]["class_names"][1] = "something else"
    (other / "data_info.json").write_text(json.dumps(info))
    with pytest.raises(ConfigError, match="not the training data's"):
        train(config(synth, tmp_path / "d", val_data=other))


@pytest.mark.integration
def test_compare_table_says_where_each_row_stopped(synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "compare.md"
    argv = ["bench", "compare", "--data", str(synth), "--kinds", "discriminative",
            "--runs", str(tmp_path / "runs"), "--long", "4", "--short", "4",
            "--max-steps", "10", "--batch-size", "16", "--lora-rank", "4", "--lora-alpha", "8",
            "--no-progress", "--val-data", str(synth), "--val-every", "5",
            "--val-windows", "32", "--patience", "50", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    text = out.read_text()
    assert "Validation every 5 steps on 32 windows" in text and "best val loss @ step" in text
    row = next(line for line in text.splitlines() if line.startswith("| discriminative |"))
    curve = read_validation(tmp_path / "runs" / "discriminative")
    assert f"{curve[-1]['best']:.4f} @ {curve[-1]['best_step']}, budget" in row
