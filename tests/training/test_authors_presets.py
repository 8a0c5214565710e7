"""The authors' five data_info.json entries load unchanged, and `gad train --preset` trains
each of them (with synthetic feature arrays of their shapes, a tiny backbone, 2 steps)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gad.cli import main
from model.checkpoint_info import read_checkpoint_info
from model.config import TargetRules
from runtime.errors import ConfigError
from tests.training.authors_data import authors_entries, authors_file, write_authors_dataset
from training.data.procedures import ProcedureConfig, write_procedure_dataset
from training.data_info import load_data_info
from training.dataset import load_split
from training.presets import PRESETS, preset, preset_table


def _install(root: Path, entry: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    file = "Ego4D-GoalStep" if entry == "Ego4DGoal" else "CrossTask"
    (root / "data_info.json").write_bytes(authors_file(file))
    return root


def test_the_released_files_are_intact() -> None:
    entries = authors_entries()
    assert sorted(entries) == ["CrossTask", "EK100", "EK55", "Ego4DGoal", "THUMOS", "TVSeries"]


@pytest.mark.parametrize(
    ("entry", "classes", "ignore", "model_classes", "fps", "splits"),
    [
        ("THUMOS", 22, 21, 21, 4, (200, 213, 0)),  # Ambiguous (21): out of the model
        ("TVSeries", 31, None, 31, 4, (20, 7, 0)),  # ignore_index -100: none
        ("EK100", 3807, None, 3807, 4, (495, 138, 0)),  # ignore_index 0 = background
        ("CrossTask", 106, None, 106, 1, (2193, 557, 0)),  # ignore_index 0 = background
        ("Ego4DGoal", 512, None, 512, 1, (583, 134, 134)),  # -100; val split
    ],
)
def test_their_entries_load_unchanged(
    tmp_path: Path,
    entry: str,
    classes: int,
    ignore: int | None,
    model_classes: int,
    fps: int,
    splits: tuple[int, int, int],
) -> None:
    info = load_data_info(_install(tmp_path, entry), entry)
    assert len(info.class_names) == classes and info.ignore_index == ignore
    assert info.background_index == 0 and info.model_background_index == 0
    assert len(info.model_class_names) == model_classes and info.fps == fps
    assert tuple(len(s) for s in (info.train_sessions, info.test_sessions, info.val_sessions)) == (
        splits
    )
    assert info.previous_action is False  # their files have no switch: the preset decides
    if splits[2]:
        assert info.sessions("val") == tuple(authors_entries()[entry]["val_session_set"])
    else:
        with pytest.raises(ConfigError, match="no val_session_set"):
            info.sessions("val")


def test_ego4d_class_names_with_commas_are_accepted(tmp_path: Path) -> None:
    info = load_data_info(_install(tmp_path, "Ego4DGoal"))  # one entry: no name needed
    commas = [n for n in info.class_names if "," in n]
    assert len(commas) == 6 and "cut bacon, sausage, or ham" in commas


def test_a_file_with_several_datasets_needs_a_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pick one with --dataset"):
        load_data_info(_install(tmp_path, "THUMOS"))


def test_num_classes_must_match(tmp_path: Path) -> None:
    root = _install(tmp_path, "THUMOS")
    data = json.loads((root / "data_info.json").read_text())
    data["THUMOS"]["num_classes"] = 23
    (root / "data_info.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="num_classes 23 but 22 class_names"):
        load_data_info(root, "THUMOS")


def test_the_preset_table() -> None:
    assert list(PRESETS) == ["thumos", "tvseries", "ek100", "crosstask", "ego4d", "coin"]
    # The authors' scripts (OAD/script/oad_train.sh, Offline/script/train.sh).
    rules = {
        name: (p.short_frames, p.previous_action, p.background_weight, p.epochs, p.fps)
        for name, p in PRESETS.items()
        if p.task == "frame"
    }
    assert rules == {
        "thumos": (32, "none", 1.0, 50, 4),
        "tvseries": (32, "none", 1.0, 50, 4),
        "ek100": (20, "first", 0.5, 50, 4),
        "crosstask": (20, "first", 0.2, 50, 1),
        "ego4d": (16, "first", 0.5, 20, 1),
    }
    for p in PRESETS.values():
        assert (p.lr, p.lora_rank, p.lora_alpha, p.lora_dropout) == (1e-4, 128, 256, 0.05)
    coin = preset("coin")
    assert (coin.epochs, coin.batch_size, coin.warmup, coin.clip_frames) == (5, 16, 0.05, 1200)
    assert (coin.clip_tokens_per_frame, coin.clip_separator) == (10, ",")
    table = preset_table()
    assert table.count("\n") == len(PRESETS) + 1 and "| ek100 | EK100 |" in table
    with pytest.raises(ConfigError, match="preset must be one of"):
        preset("thumos14")


# name → (entry, feature folder, feature size, .pt features, short window)
CASES = {
    "thumos": ("THUMOS", "rgb_kinetics_resnet50", 2048, False, 32),
    "tvseries": ("TVSeries", "rgb_kinetics_resnet50", 2048, False, 32),
    "ek100": ("EK100", "rgb_kinetics_bninception", 1024, False, 20),
    "crosstask": ("CrossTask", "vitg14_rgb_fps1_h224_w224", 1536, False, 20),
    "ego4d": ("Ego4DGoal", "features/dinov2-giant", 1536, True, 16),
}


def _train(data: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "train", str(data), "--out", str(out), "--backbone", "tiny", "--max-steps", "2",
            "--limit-videos", "2", "--no-progress", *extra,
        ]
    )  # fmt: skip


@pytest.mark.integration
@pytest.mark.parametrize("name", list(CASES))
def test_each_preset_trains_on_their_file_unchanged(tmp_path: Path, name: str) -> None:
    entry, folder, dim, pt, short = CASES[name]
    data = write_authors_dataset(
        tmp_path / "data", entry, feature_dir=folder, feature_dim=dim, pt=pt
    )
    assert _train(data, tmp_path / "run", "--preset", name) == 0
    config = json.loads((tmp_path / "run" / "train_config.json").read_text())
    chosen = preset(name)
    assert config["preset"] == name and config["dataset"] == entry
    assert config["short_frames"] == short and config["long_frames"] == 128
    assert config["background_weight"] == chosen.background_weight
    assert config["previous_action"] == chosen.previous_action
    assert (config["epochs"], config["batch_size"], config["warmup_ratio"]) == (
        chosen.epochs,
        32,
        0.1,
    )
    assert (config["lora"]["rank"], config["lora"]["alpha"]) == (128, 256)
    model = read_checkpoint_info(tmp_path / "run" / "checkpoint").config
    info = authors_entries()[entry]
    ignored = 1 if entry == "THUMOS" else 0
    assert model.num_classes == len(info["class_names"]) - ignored
    assert model.background_weight == chosen.background_weight
    assert model.label_text == "authors" and model.targets == TargetRules()
    assert model.window.short_frames == short


def test_ego4d_val_split_and_pt_features(tmp_path: Path) -> None:
    data = write_authors_dataset(
        tmp_path, "Ego4DGoal", feature_dir="features/dinov2-giant", feature_dim=1536, pt=True
    )
    info = load_data_info(data, feature_dirs=["features/dinov2-giant"])
    videos = load_split(info, "val", limit=2)
    assert len(videos) == 2 and videos[0].features.shape == (48, 1536)
    assert videos[0].features.dtype == np.float32


def test_a_preset_checks_the_data_and_asks_for_the_backbone(tmp_path: Path) -> None:
    data = write_authors_dataset(
        tmp_path / "ct", "CrossTask", feature_dir="vitg14_rgb_fps1_h224_w224", feature_dim=64
    )
    base = ["train", str(data), "--out", str(tmp_path / "run"), "--preset", "crosstask"]
    with pytest.raises(ConfigError, match="pass --backbone PATH"):
        _config(base)
    # 64-d rows are not their DINOv2 ViT-g features.
    with pytest.raises(ConfigError, match="features are 1536-d, the data's rows are 64-d"):
        _run_config([*base, "--backbone", "tiny", "--limit-videos", "1"])
    # THUMOS's preset on CrossTask's 1 fps entry.
    thumos = ["--preset", "thumos", "--dataset", "CrossTask", "--backbone", "tiny"]
    folder = ["--feature-dirs", "vitg14_rgb_fps1_h224_w224", "--limit-videos", "1"]
    with pytest.raises(ConfigError, match="features are 4 fps, the data says 1"):
        _run_config(base[:4] + thumos + folder)


def test_flags_win_over_the_preset(tmp_path: Path) -> None:
    base = ["train", "DATA", "--out", str(tmp_path), "--preset", "ek100", "--backbone", "tiny"]
    config = _config([*base, "--short", "8", "--background-weight", "0.3", "--epochs", "2"])
    assert (config.short_frames, config.background_weight, config.epochs) == (8, 0.3, 2)
    assert (config.long_frames, config.previous_action, config.dataset) == (128, "first", "EK100")
    plain = _config(["train", "DATA", "--out", str(tmp_path)])
    assert (plain.short_frames, plain.background_weight, plain.epochs, plain.batch_size) == (
        32,
        1.0,
        1,
        8,
    )
    assert (plain.backbone, plain.preset, plain.previous_action) == ("tiny", None, None)


@pytest.mark.integration
def test_coin_preset_trains_the_clip_model(tmp_path: Path) -> None:
    data = tmp_path / "coin"
    write_procedure_dataset(
        data, ProcedureConfig(videos_train=2, videos_test=1, feature_dim=10 * 1024)
    )
    assert _train(data, tmp_path / "run", "--preset", "coin") == 0
    model = read_checkpoint_info(tmp_path / "run" / "checkpoint").config
    assert model.is_clip and model.clip_frames == 1200
    assert (model.tokens_per_frame, model.frame_tokens, model.frame_separator) == (
        10,
        "split",
        ",",
    )


def _config(argv: list[str]):  # the TrainConfig a command line builds
    from gad.cli import build_parser
    from gad.commands.train import train_config

    args = build_parser().parse_args(argv)
    return train_config(args, args.out)


def _run_config(argv: list[str]) -> None:
    from training.train import frame_task

    frame_task(_config(argv))
