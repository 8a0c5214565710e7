import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import training.train as train_module
from gad.cli import main
from model.checkpoint import load_checkpoint
from model.config import LoraSettings
from runtime.windowing import build_windows
from training.data.synth import SynthConfig, write_synth_dataset
from training.data_info import load_data_info
from training.dataset import load_split
from training.evaluate import (
    VideoScores,
    compute_metrics,
    load_scores,
    pooled_labels,
    predict,
    predict_decodings,
    save_scores,
    scores_decoding,
    to_data_index,
)
from training.train import TrainConfig, train


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    write_synth_dataset(root, SynthConfig(videos_train=12, videos_test=3, feature_dim=32))
    return root


def config(data: Path, out: Path, **overrides: object) -> TrainConfig:
    values: dict[str, object] = {
        "data": data,
        "out": out,
        "kind": "gad",
        "long_frames": 8,
        "short_frames": 8,
        "batch_size": 16,
        "lr": 2e-3,
        "lora": LoraSettings(rank=8, alpha=16, dropout=0.0),
        "progress": False,
        "log_every": 5,
    }
    values.update(overrides)
    return TrainConfig(**values)  # type: ignore[arg-type]


@pytest.mark.integration
def test_short_training_beats_chance_by_far(synth: Path, tmp_path: Path) -> None:
    result = train(config(synth, tmp_path / "run", epochs=8))
    info = load_data_info(synth)
    test = load_split(info, "test")
    metrics = compute_metrics(
        predict(load_checkpoint(result.checkpoint), test, info, progress=False), info
    )
    # Chance mAP is the share of positive frames per class: ~4 % here.
    targets = np.concatenate([v.targets for v in test])
    chance = targets[:, 1:-1].mean(axis=0)[targets[:, 1:-1].sum(axis=0) > 0].mean()
    assert chance < 0.1
    assert metrics["map"] > 0.35, metrics["map"]
    assert metrics["frame_accuracy"] > 0.5
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == result.steps and log[-1]["loss"] < log[0]["loss"]
    assert {"cls_loss", "lm_loss", "lr", "windows_per_s"} <= set(log[0])


@pytest.mark.integration
def test_interrupted_run_resumes_to_the_same_weights(
    synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # LoRA dropout on: the resumed run must draw the masks the straight one drew.
    lora = LoraSettings(rank=8, alpha=16, dropout=0.1)
    straight = train(config(synth, tmp_path / "straight", max_steps=12, epochs=3, lora=lora))

    calls = {"n": 0}
    real_collate = train_module.collate

    def interrupt_at_step_7(items):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return real_collate(items)

    monkeypatch.setattr(train_module, "collate", interrupt_at_step_7)
    with pytest.raises(KeyboardInterrupt):
        train(config(synth, tmp_path / "resumed", max_steps=12, epochs=3, lora=lora))
    state = torch.load(tmp_path / "resumed" / "checkpoint" / "trainer_state.pt", weights_only=False)
    assert state["step"] == 6  # Ctrl-C saved what was done
    monkeypatch.setattr(train_module, "collate", real_collate)
    resumed = train(
        config(synth, tmp_path / "resumed", max_steps=12, epochs=3, lora=lora, resume=True)
    )
    assert resumed.steps == 12
    for name in ("trained.safetensors", "adapter/adapter_model.safetensors"):
        a = load_file(str(straight.checkpoint / name))
        b = load_file(str(resumed.checkpoint / name))
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)


def test_resume_refuses_other_settings(synth: Path, tmp_path: Path) -> None:
    cfg = config(synth, tmp_path / "run", max_steps=2)
    train(cfg)
    from runtime.errors import ConfigError

    with pytest.raises(ConfigError, match="--resume"):
        train(replace(cfg, kind="discriminative", resume=True))


@pytest.mark.integration
def test_cli_synth_train_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, run = tmp_path / "data", tmp_path / "run"
    assert (
        main(
            [
                "data",
                "synth",
                "--out",
                str(data),
                "--train-videos",
                "4",
                "--test-videos",
                "2",
                "--feature-dim",
                "16",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "train",
                str(data),
                "--out",
                str(run),
                "--kind",
                "discriminative",
                "--long",
                "4",
                "--short",
                "4",
                "--max-steps",
                "5",
                "--lora-rank",
                "4",
                "--lora-alpha",
                "8",
                "--no-progress",
            ]
        )
        == 0
    )
    scores = run / "scores.npz"
    assert (
        main(["eval", str(run), "--data", str(data), "--save-scores", str(scores), "--plots", "1"])
        == 0
    )
    out = capsys.readouterr().out
    assert "| mAP |" in out and "Segment F1@0.5" in out
    report = run / "eval"
    metrics = json.loads((report / "metrics.json").read_text())
    assert (report / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list(report.glob("timeline_*.png"))) == 1
    results, names = load_scores(scores)
    assert names[0] == "background" and len(results) == 2
    assert results[0].scores.shape == results[0].targets.shape
    # The report can be rebuilt from the scores alone, with the same numbers.
    assert (
        main(
            [
                "eval",
                "--data",
                str(data),
                "--from-scores",
                str(scores),
                "--report",
                str(tmp_path / "again"),
            ]
        )
        == 0
    )
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["map"] == pytest.approx(metrics["map"])
    # A val split (data_info.json's val_session_set, as Ego4D-GoalStep's file has): its own.
    info_file = data / "data_info.json"
    document = json.loads(info_file.read_text())
    entry = document["SYNTH"]
    entry["val_session_set"] = entry["test_session_set"][:1]
    info_file.write_text(json.dumps(document))
    val = ["eval", str(run), "--data", str(data), "--split", "val", "--plots", "0"]
    assert main([*val, "--report", str(tmp_path / "val")]) == 0
    assert "SYNTH val" in capsys.readouterr().out
    assert json.loads((tmp_path / "val" / "metrics.json").read_text())["videos"] == 1


@pytest.mark.integration
def test_generative_eval_scores_are_label_likelihoods_and_labels_are_decoded(
    synth: Path, tmp_path: Path
) -> None:
    # Was: one-hot scores from the decoded label (meaningless mAP). Now the scores are the
    # softmax over classes of each label's log-likelihood; the label is still the decode.
    result = train(config(synth, tmp_path / "gen", kind="generative", max_steps=3))
    model = load_checkpoint(result.checkpoint)
    info = load_data_info(synth)
    video = load_split(info, "test", limit=1)
    frames = [0, 5, len(video[0]) - 1]
    windows, mask = build_windows(video[0].features, frames, model.config.window)
    windows_t, mask_t = torch.from_numpy(windows), torch.from_numpy(mask).long()
    with torch.no_grad():
        expected = torch.softmax(model.label_log_likelihoods(windows_t, mask_t), -1).numpy()
    for constrained in (False, True):
        out = predict(model, video, info, constrained=constrained, progress=False)[0]
        np.testing.assert_allclose(out.scores.sum(axis=1), 1.0, rtol=1e-5)
        assert np.all(out.scores[:, info.ignore_index] == 0.0)
        assert len(np.unique(out.scores.round(6))) > 2  # not one-hot
        model_columns = [i for i in range(len(info.class_names)) if i != info.ignore_index]
        np.testing.assert_allclose(out.scores[frames][:, model_columns], expected, atol=1e-5)
        decoded = model.generate(windows_t, mask_t, constrained=constrained).indices
        assert out.decoded is not None
        assert out.decoded[frames].tolist() == [model_columns[i] for i in decoded]
        assert out.predicted is out.decoded
    # Both decodings in one pass (what the compare's two generative rows use): the scores
    # computed once and shared, each decode as a separate evaluation with its flag.
    both = predict_decodings(model, video, info, decodings=(False, True), progress=False)
    for constrained in (False, True):
        alone = predict(model, video, info, constrained=constrained, progress=False)[0]
        shared = both[constrained][0]
        np.testing.assert_allclose(shared.scores, alone.scores, atol=1e-6)
        assert shared.decoded is not None and alone.decoded is not None
        np.testing.assert_array_equal(shared.decoded, alone.decoded)


def test_accuracy_and_segments_come_from_the_decoded_labels() -> None:
    info = SimpleNamespace(
        class_names=("background", "a", "b"), ignore_index=None, background_index=0
    )
    targets = np.eye(3, dtype=np.float32)[[0, 1, 1, 2]]
    scores = np.eye(3, dtype=np.float32)[[0, 1, 1, 2]] * 0.6 + 0.1  # ranks every frame right
    decoded = np.array([0, 2, 2, 2])  # half of the frames wrong
    by_scores = compute_metrics([VideoScores("v", scores, targets)], info)  # type: ignore[arg-type]
    by_decode = compute_metrics([VideoScores("v", scores, targets, decoded)], info)  # type: ignore[arg-type]
    assert by_scores["frame_accuracy"] == 1.0 and by_decode["frame_accuracy"] == 0.5
    assert by_decode["map"] == by_scores["map"] == 1.0  # mAP reads the scores only
    assert by_decode["segment_f1"]["0.5"] < by_scores["segment_f1"]["0.5"] == 1.0
    truth, predicted = pooled_labels([VideoScores("v", scores, targets, decoded)], info)  # type: ignore[arg-type]
    assert truth.tolist() == [0, 1, 1, 2] and predicted.tolist() == [0, 2, 2, 2]


def test_decoded_labels_survive_the_scores_file(tmp_path: Path) -> None:
    info = SimpleNamespace(class_names=("background", "a", "b"))
    targets = np.eye(3, dtype=np.float32)[[0, 1, 2]]
    results = [
        VideoScores("gen", targets * 0.5 + 0.1, targets, np.array([0, 2, 2])),
        VideoScores("cls", targets, targets),
    ]
    save_scores(tmp_path / "s.npz", results, info, decoding="free")  # type: ignore[arg-type]
    loaded, names = load_scores(tmp_path / "s.npz")
    assert names == ["background", "a", "b"] and scores_decoding(tmp_path / "s.npz") == "free"
    by_name = {r.session: r for r in loaded}
    assert by_name["gen"].predicted.tolist() == [0, 2, 2]
    assert by_name["cls"].decoded is None and by_name["cls"].predicted.tolist() == [0, 1, 2]


def test_model_classes_map_past_the_ignore_index() -> None:
    info = SimpleNamespace(ignore_index=2)
    assert to_data_index(np.array([0, 1, 2, 3]), info).tolist() == [0, 1, 3, 4]  # type: ignore[arg-type]
    assert to_data_index(np.array([0, 3]), SimpleNamespace(ignore_index=None)).tolist() == [0, 3]  # type: ignore[arg-type]


@pytest.mark.integration
def test_cli_eval_of_a_generative_run_says_which_decoding(
    synth: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "gen"
    train(config(synth, run, kind="generative", max_steps=1))
    base = ["eval", str(run), "--data", str(synth), "--limit-videos", "1", "--plots", "0"]
    assert main([*base, "--report", str(tmp_path / "free")]) == 0
    free = capsys.readouterr().out
    assert "generative (free decoding)" in free and "nearest label by edit distance" in free
    assert json.loads((tmp_path / "free" / "metrics.json").read_text())["decoding"] == "free"
    argv = [*base, "--constrained-decoding", "--report", str(tmp_path / "constrained")]
    assert main(argv) == 0
    constrained = capsys.readouterr().out
    assert "generative (constrained decoding)" in constrained and "labels by a trie" in constrained
    with pytest.raises(SystemExit):
        main([*base, "--constrained-decoding", "--free-decoding"])


def test_an_existing_run_is_not_overwritten(synth: Path, tmp_path: Path) -> None:
    from runtime.errors import ConfigError

    cfg = config(synth, tmp_path / "run", max_steps=1)
    train(cfg)
    with pytest.raises(ConfigError, match="already holds a checkpoint: --resume"):
        train(cfg)


def test_long_stride_travels_with_the_checkpoint(synth: Path, tmp_path: Path) -> None:
    from runtime.windowing import WindowSpec

    result = train(config(synth, tmp_path / "run", max_steps=1, long_frames=4, long_stride=3))
    model = load_checkpoint(result.checkpoint)
    assert model.config.window == WindowSpec(4, 8, long_stride=3)  # what eval builds windows with
