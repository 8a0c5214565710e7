"""The three clip tasks trained jointly on synthetic procedures, end to end through the
CLI: synth → train --task clip → eval → export beside a per-frame model → /classify."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gad.cli import main
from model.config import LoraSettings
from training.clip_eval import (
    QuestionScores,
    clip_metrics,
    predict_clip_decodings,
    predict_clips,
)
from training.clips import load_clip_videos, open_clip_source
from training.data.procedures import ProcedureConfig, write_procedure_dataset
from training.train import TrainConfig, train

pytestmark = pytest.mark.integration  # trains the three clip tasks to above chance

CHANCE = {"step": 1 / 17, "task": 1 / 6, "next": 1 / 17}


@pytest.fixture(scope="module")
def procedures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("procedures") / "data"
    write_procedure_dataset(root, ProcedureConfig(videos_train=60, videos_test=18))
    return root


def quick_config(data: Path, out: Path, kind: str) -> TrainConfig:
    return TrainConfig(
        data=data,
        out=out,
        task="clip",
        kind=kind,
        backbone="tiny",
        clip_frames=24,
        epochs=8,
        batch_size=16,
        lr=2e-3,
        lora=LoraSettings(rank=8, alpha=16, dropout=0.0),
        progress=False,
    )


@pytest.mark.parametrize("kind", ["discriminative", "gad"])
def test_the_three_tasks_learn_well_above_chance(
    procedures: Path, tmp_path: Path, kind: str
) -> None:
    from model.checkpoint import load_checkpoint

    result = train(quick_config(procedures, tmp_path / kind, kind))
    model = load_checkpoint(result.checkpoint)
    test = load_clip_videos(open_clip_source(procedures), "test")
    metrics = clip_metrics(predict_clips(model, test, progress=False))
    for task, chance in CHANCE.items():
        assert metrics[task]["top1"] > 3 * chance, (task, metrics)
    assert metrics["step"]["top5"] >= metrics["step"]["top1"]


TINY = ["--backbone", "tiny", "--lora-rank", "8", "--lora-alpha", "16", "--no-progress"]


@pytest.fixture(scope="module")
def clip_run(procedures: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`gad train --task clip` then `gad eval` on the procedures: the run folder."""
    run = tmp_path_factory.mktemp("runs") / "clip"
    assert main(["train", str(procedures), "--task", "clip", "--out", str(run),
                 "--epochs", "4", "--batch-size", "16", "--lr", "2e-3", "--clip-frames", "24",
                 *TINY]) == 0  # fmt: skip
    assert main(["eval", str(run), "--data", str(procedures)]) == 0
    return run


def test_cli_train_eval_export_and_classify(
    procedures: Path, clip_run: Path, tmp_path: Path, capsys
) -> None:
    """The user's path: a clip model and a per-frame model on the same features, one
    package, and /classify answering step, task and next step for a posted clip."""
    tiny = TINY
    frame_run = tmp_path / "frame"
    assert main(["eval", str(clip_run), "--data", str(procedures)]) == 0
    out = capsys.readouterr().out
    assert "| step |" in out and "| task |" in out and "| next |" in out
    metrics = json.loads((clip_run / "eval" / "metrics.json").read_text())
    assert metrics["task"]["clips"] == 18
    assert main(["train", str(procedures), "--out", str(frame_run), "--long", "8", "--short",
                 "8", "--max-steps", "20", *tiny]) == 0  # fmt: skip
    assert main(["export", str(frame_run), "--clip", str(clip_run), "--out",
                 str(tmp_path / "models"), "--data", str(procedures)]) == 0  # fmt: skip
    package = tmp_path / "models" / "frame" / "1"
    manifest = json.loads((package / "manifest.json").read_text())
    assert (
        manifest["clip"]["max_frames"] == 24 and manifest["clip"]["verify"]["max_abs_diff"] < 1e-3
    )
    assert manifest["clip"]["metrics"] == metrics  # the clip run's eval travels along

    # /classify on a test video's features: the procedure fields equal the clip model's
    # answers in PyTorch on the same rows.
    from fastapi.testclient import TestClient

    from model.checkpoint import load_checkpoint
    from runtime.windowing import build_clip
    from service.app import create_app
    from service.settings import Settings

    source = open_clip_source(procedures)
    video = load_clip_videos(source, "test", limit=1)[0]
    rows = np.asarray(video.features, dtype=np.float32)
    with TestClient(create_app(Settings(model=package))) as client:
        response = client.post("/classify", json={"features": rows.tolist(), "fps": source.fps})
    assert response.status_code == 200, response.text
    procedure = response.json()["procedure"]
    model = load_checkpoint(clip_run / "checkpoint")
    import torch

    clip, mask = build_clip(rows, 24)
    with torch.no_grad():
        logits = model.clip_logits(
            torch.from_numpy(clip[None]), torch.from_numpy(mask[None]).long()
        )
    names = {"step": model.config.class_names, "task": model.config.task_names}
    for field, out, kind in zip(
        ("step", "task", "next_step"), logits, ("step", "task", "step"), strict=True
    ):
        probs = torch.softmax(out[0], -1)
        assert procedure[field]["label"] == names[kind][int(probs.argmax())]
        assert procedure[field]["score"] == pytest.approx(float(probs.max()), abs=1e-4)
    assert procedure["task"]["label"] == source.annotations.task_names[video.task]


def test_a_clip_only_package_answers_clips_and_refuses_streams(
    procedures: Path, clip_run: Path, tmp_path: Path
) -> None:
    """`gad export CLIP_RUN`: clip.onnx without a per-frame head. /classify gives the
    procedure only; a stream is refused with a clear reason instead of failing later."""
    from fastapi.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    from runtime.manifest import read_package
    from service.app import create_app
    from service.settings import Settings

    assert main(["export", str(clip_run), "--out", str(tmp_path / "models")]) == 0
    package = read_package(tmp_path / "models" / "clip")
    assert not package.has_head and package.clip is not None
    assert package.clip.max_frames == 24
    assert sorted(package.info.files) == ["clip.onnx"]
    rows = np.asarray(load_clip_videos(open_clip_source(procedures), "test", limit=1)[0].features)
    with TestClient(create_app(Settings(model=package.folder))) as client:
        models = client.get("/v1/models").json()["models"][0]
        assert models["streams"] is False and models["clip"]["max_frames"] == 24
        body = client.post("/classify", json={"features": rows.tolist(), "fps": 2.0}).json()
        assert set(body) >= {"procedure", "source"} and "frames" not in body
        assert body["procedure"]["frames"] == 24 and body["procedure"]["rows"] == len(rows)
        with (
            client.websocket_connect("/v1/streams/cam") as ws,
            pytest.raises(WebSocketDisconnect) as closed,
        ):
            ws.receive_json()
        assert closed.value.code == 1008 and "whole clips only" in closed.value.reason


def test_clip_metrics_top1_from_the_decoded_answer_top5_from_the_scores() -> None:
    # Seven classes; the decoded answers (generative) differ from the scores' argmax.
    scores = np.zeros((4, 7), dtype=np.float32)
    scores[0, [1, 2, 3, 4, 5, 6]] = [0.5, 0.1, 0.1, 0.1, 0.1, 0.05]  # true 0: 7th, not top-5
    scores[1, [2, 1, 0, 3, 4]] = [0.5, 0.2, 0.1, 0.1, 0.05]  # true 1: 2nd
    scores[2] = np.eye(7)[2]  # true 2: 1st
    scores[3, [0, 3]] = [0.6, 0.3]  # true 3: 2nd
    labels = np.array([0, 1, 2, 3])
    decoded = np.array([0, 2, 5, 3])  # right, wrong, wrong, right
    generative = clip_metrics({"step": QuestionScores(scores, labels, decoded)})["step"]
    assert generative == {"top1": 0.5, "top5": 0.75, "clips": 4}
    heads = clip_metrics({"step": QuestionScores(scores, labels)})["step"]  # argmax: 2 only
    assert heads == {"top1": 0.25, "top5": 0.75, "clips": 4}
    few = clip_metrics({"task": QuestionScores(scores[:, :5], labels)})["task"]
    assert few["top5"] is None  # trivial with five classes


@pytest.fixture(scope="module")
def generative_clip_run(procedures: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "generative"
    assert main(["train", str(procedures), "--task", "clip", "--kind", "generative",
                 "--out", str(run), "--max-steps", "3", "--batch-size", "8",
                 "--clip-frames", "8", *TINY]) == 0  # fmt: skip
    return run


def test_cli_eval_of_a_generative_clip_model_decodes_free_unless_asked(
    procedures: Path, generative_clip_run: Path, tmp_path: Path, capsys
) -> None:
    """`gad eval` of a generative clip checkpoint: the paper's free decoding by default,
    `--constrained-decoding` honoured, and the report says which ran."""
    common = ["--data", str(procedures), "--limit-videos", "3"]
    assert (
        main(["eval", str(generative_clip_run), *common, "--report", str(tmp_path / "free")]) == 0
    )
    free_out = capsys.readouterr().out
    assert main(["eval", str(generative_clip_run), *common, "--report",
                 str(tmp_path / "trie"), "--constrained-decoding"]) == 0  # fmt: skip
    trie_out = capsys.readouterr().out
    free = json.loads((tmp_path / "free" / "metrics.json").read_text())
    trie = json.loads((tmp_path / "trie" / "metrics.json").read_text())
    assert (free["decoding"], trie["decoding"]) == ("free", "constrained")
    assert "free greedy decoding" in free_out and "edit distance" in free_out
    assert "constrained to the labels" in trie_out
    assert "free greedy" in (tmp_path / "free" / "metrics.md").read_text()
    assert "log-likelihood" in free_out  # where its top-5 comes from
    # One model, one set of likelihood scores: top-5 agrees whatever the decoding.
    assert free["step"]["top5"] == trie["step"]["top5"] and free["step"]["top5"] is not None


def test_both_decodings_in_one_pass_equal_two_separate_evaluations(
    procedures: Path, generative_clip_run: Path
) -> None:
    """The compare's generative rows score each clip once and decode it twice: the same
    scores, and each decode the one a separate evaluation with that flag gives."""
    from model.checkpoint import load_checkpoint

    model = load_checkpoint(generative_clip_run / "checkpoint")
    test = load_clip_videos(open_clip_source(procedures), "test", limit=2)
    both = predict_clip_decodings(model, test, decodings=(False, True), progress=False)
    for constrained in (False, True):
        alone = predict_clips(model, test, constrained=constrained, progress=False)
        for question, scores in alone.items():
            shared = both[constrained][question]
            np.testing.assert_allclose(shared.scores, scores.scores, atol=1e-6)
            np.testing.assert_array_equal(shared.labels, scores.labels)
            assert shared.decoded is not None and scores.decoded is not None
            np.testing.assert_array_equal(shared.decoded, scores.decoded)
