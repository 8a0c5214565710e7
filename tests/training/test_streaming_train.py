"""`gad train --attention streaming`: crops with every frame supervised, the checkpoint
remembers its mode, `gad eval` reads it as a live stream would, export says what is missing."""

from pathlib import Path

import numpy as np
import pytest
import torch

from gad.cli import main
from model.checkpoint import load_checkpoint
from model.config import LoraSettings
from model.streaming.runner import StreamingGAD
from runtime.manifest import read_package
from runtime.stepping import StepEngine
from tests.training.layout import write_thumos_like
from training.data.synth import SynthConfig, write_synth_dataset
from training.data_info import load_data_info
from training.dataset import load_split, previous_actions
from training.streaming import IGNORED, StreamCrops
from training.train import TrainConfig, train

pytestmark = pytest.mark.integration  # trains and exports streaming models


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    write_synth_dataset(root, SynthConfig(videos_train=8, videos_test=2, feature_dim=32))
    return root


def test_crops_supervise_every_frame_that_sees_its_whole_window(tmp_path: Path) -> None:
    root = write_thumos_like(tmp_path)
    info = load_data_info(root)
    videos = load_split(info, "train")
    crops = StreamCrops(videos, info, crop=12, history=3, start_share=0.5, seed=0)
    seen_start = seen_middle = False
    for epoch in range(6):
        crops.set_epoch(epoch)
        for i in range(len(crops)):
            features, mask, labels, previous = crops[i]
            v, start = crops.index[i]
            video = videos[v]
            n = min(12, len(video) - start)
            assert features.shape == (12, video.features.shape[1]) and mask.sum() == n
            np.testing.assert_array_equal(features[:n], video.features[start : start + n])
            assert (labels[n:] == IGNORED).all()  # padding
            assert (previous == -1).all()  # THUMOS-like: no previous action asked for
            expected = [
                IGNORED if label == info.ignore_index else info.to_model_index(int(label))
                for label in video.labels[start : start + n]
            ]
            if start > 0:  # mid-video: the first W-1 frames lack part of their window
                seen_middle = True
                assert (labels[:3] == IGNORED).all()
                assert labels[3:n].tolist() == expected[3:]
            else:
                seen_start = True
                assert labels[:n].tolist() == expected
    assert seen_start and seen_middle
    again = StreamCrops(videos, info, crop=12, history=3, start_share=0.5, seed=0)
    again.set_epoch(5)
    assert again.index == crops.index  # seeded: a resume sees the same crops


def test_streaming_training_learns_and_eval_reads_it_as_a_stream(
    synth: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = TrainConfig(
        data=synth,
        out=tmp_path / "run",
        kind="discriminative",
        attention="streaming",
        stream_window=8,
        crop_frames=64,
        batch_size=4,
        lr=2e-3,
        epochs=6,
        lora=LoraSettings(rank=8, alpha=16, dropout=0.0),
        progress=False,
    )
    result = train(cfg)
    model = load_checkpoint(result.checkpoint)
    assert model.config.attention == "streaming" and model.config.stream_window == 8
    # eval runs the banded pass over each whole test video; it equals the step loop
    info = load_data_info(synth)
    video = load_split(info, "test")[0]
    rows = torch.from_numpy(np.array(video.features[:40], np.float32))[None]
    stream = StreamingGAD(model, 8)
    with torch.no_grad():
        banded = stream.frame_logits(rows)[0]
        state = stream.start(1)
        stepped = torch.cat([stream.step(rows[:, t], state) for t in range(40)])
    torch.testing.assert_close(stepped, banded, rtol=0, atol=1e-4)
    scores_file = tmp_path / "scores.npz"
    assert (
        main(
            ["eval", str(tmp_path / "run"), "--data", str(synth), "--save-scores", str(scores_file)]
        )
        == 0
    )
    metrics = (tmp_path / "run" / "eval" / "metrics.json").read_text()
    assert '"map"' in metrics
    # the exported step.onnx, stepped over a whole test video in onnxruntime, gives the
    # scores gad eval gave (the serving loop is the evaluated model, frame for frame)
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "models")]) == 0
    capsys.readouterr()
    package = read_package(tmp_path / "models" / "run")
    assert package.is_streaming and not package.has_head
    verify = package.info.verify
    assert verify is not None and verify.max_abs_diff <= 1e-4
    engine = StepEngine.load(package, providers=("cpu",))
    state = engine.new_state()
    rows = np.array(video.features, np.float32)
    served = np.stack([engine.classify(row[None], [state])[0] for row in rows])
    with np.load(scores_file) as saved:
        evaluated = saved[f"scores/{video.session}"]
        names = list(saved["class_names"])
    assert names[: len(package.classes)] == list(package.classes)  # + the ignored column
    np.testing.assert_allclose(served, evaluated[:, : len(package.classes)], rtol=0, atol=1e-4)


def test_crops_carry_each_frames_previous_action_inside_its_window(synth: Path) -> None:
    info = load_data_info(synth)
    assert info.previous_action
    videos = load_split(info, "train")
    crops = StreamCrops(videos, info, crop=40, history=5, start_share=0.5, seed=0)
    found = 0
    for i in range(len(crops)):
        _, mask, labels, previous = crops[i]
        v, start = crops.index[i]
        expected = previous_actions(
            videos[v].labels, short=6, background=info.background_index, ignore=info.ignore_index
        )[start : start + 40]
        model_space = [info.to_model_index(int(p)) if p >= 0 else -1 for p in expected]
        n = int(mask.sum())
        assert previous[:n].tolist() == model_space and (previous[n:] == -1).all()
        assert all(p != lab for p, lab in zip(previous, labels, strict=True) if p >= 0)
        found += int((previous >= 0).sum())
    assert found > 0  # the synthetic procedures do have previous actions


def test_streaming_gad_trains_the_label_text_and_exports_the_head_alone(
    synth: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = TrainConfig(
        data=synth,
        out=tmp_path / "run",
        kind="gad",
        attention="streaming",
        stream_window=6,
        crop_frames=48,
        batch_size=4,
        lr=2e-3,
        max_steps=12,
        lora=LoraSettings(rank=8, alpha=16, dropout=0.0),
        progress=False,
    )
    result = train(cfg)
    model = load_checkpoint(result.checkpoint)
    assert model.config.kind == "gad" and model.config.attention == "streaming"
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "models")]) == 0
    capsys.readouterr()
    package = read_package(tmp_path / "models" / "run")
    verify = package.info.verify
    assert package.is_streaming and verify is not None and verify.max_abs_diff <= 1e-4


def test_streaming_generative_is_refused_with_the_reason(synth: Path, tmp_path: Path) -> None:
    from runtime.errors import ConfigError

    common = {"data": synth, "attention": "streaming", "stream_window": 4, "progress": False}
    with pytest.raises(ConfigError, match=r"\[CLS\] head"):
        train(TrainConfig(out=tmp_path / "b", kind="generative", max_steps=1, **common))
