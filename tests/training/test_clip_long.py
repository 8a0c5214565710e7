"""Long clips (the paper's COIN: up to 1,200 rows at 2 fps) and k tokens per row through
training, evaluation and export: batches cut to their longest clip, evaluation batches
sized by tokens, `gad train --task clip --clip-frames 1200`, and a k = 2 model trained on
long procedure videos whose clip.onnx equals PyTorch on a 1,200-row clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from model.clip import TASK
from model.config import LoraSettings
from runtime.manifest import read_package
from runtime.windowing import build_clip
from tests.model.long_clips import LONG_ROWS, long_clip_package
from tests.model.test_clip import clip_model
from training.clip_eval import clip_batches, clip_metrics, predict_clips
from training.clips import ClipSamples, ClipVideo, collate_clips, load_clip_videos, open_clip_source
from training.data.procedures import ProcedureConfig, write_procedure_dataset
from training.train import TrainConfig, train

pytestmark = pytest.mark.integration  # trains, evaluates and exports on 1,200-row clips


@pytest.fixture(scope="module")
def long_procedures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Procedure videos of 10+ minutes at 2 fps: task clips of over 1,200 rows."""
    root = tmp_path_factory.mktemp("long") / "data"
    config = ProcedureConfig(videos_train=3, videos_test=2, min_step=300, max_step=360)
    write_procedure_dataset(root, config)
    return root


def videos_of(lengths: list[int], dim: int = 16) -> list[ClipVideo]:
    gen = np.random.default_rng(0)
    return [
        ClipVideo(f"v{i}", gen.normal(size=(n, dim)).astype(np.float32), 0, [(0, 0, n)])
        for i, n in enumerate(lengths)
    ]


def test_a_batch_is_cut_to_its_longest_clip_with_the_same_answers() -> None:
    items = ClipSamples(videos_of([5, 9, 3]), LONG_ROWS, questions=(TASK,))
    batch = collate_clips([items[i] for i in range(3)])
    assert batch["features"].shape[:2] == batch["mask"].shape == (3, 9)
    assert batch["mask"].sum(1).tolist() == [5, 9, 3]
    alone = collate_clips([items[2]])
    assert alone["features"].shape[1] == 3
    assert collate_clips([items[2], items[2]])["mask"].shape[1] == 3
    full = [items[i] for i in range(3)]
    padded = torch.from_numpy(np.stack([f for f, *_ in full]))
    mask = torch.from_numpy(np.stack([m for _, m, *_ in full])).long()
    assert padded.shape[1] == LONG_ROWS  # what the batch held before: 1,200 rows each
    model = clip_model(clip_frames=LONG_ROWS, tokens_per_frame=2).eval()
    with torch.no_grad():
        for cut, whole in zip(
            model.clip_logits(batch["features"], batch["mask"]),
            model.clip_logits(padded, mask),
            strict=True,
        ):
            torch.testing.assert_close(cut, whole, rtol=0, atol=1e-5)


def test_a_one_row_clip_keeps_two_rows() -> None:
    items = ClipSamples(videos_of([1]), 8, questions=(TASK,))
    assert collate_clips([items[0]])["mask"].tolist() == [[0, 1]]


def test_evaluation_batches_are_sized_by_rows() -> None:
    items = ClipSamples(videos_of([1500, 30, 30, 30, 1000, 30]), LONG_ROWS, questions=(TASK,))
    # Rows after subsampling: 1200, 30, 30, 30, 1000, 30.
    assert clip_batches(items, 64, 2000) == [[0], [1, 2, 3], [4, 5]]
    assert clip_batches(items, 2, 10**6) == [[0, 1], [2, 3], [4, 5]]
    assert clip_batches(items, 64, 100) == [[0], [1, 2, 3], [4], [5]]  # a long clip alone


def test_gad_train_clip_mode_reads_1200_row_clips(long_procedures: Path, tmp_path: Path) -> None:
    source = open_clip_source(long_procedures)
    videos = load_clip_videos(source, "train")
    assert source.fps == 2.0 and max(len(v.features) for v in videos) > LONG_ROWS
    config = TrainConfig(
        data=long_procedures,
        out=tmp_path / "run",
        task="clip",
        kind="gad",
        backbone="tiny",
        clip_frames=LONG_ROWS,
        max_steps=2,
        batch_size=2,
        lr=2e-3,
        lora=LoraSettings(rank=4, alpha=8, dropout=0.0),
        progress=False,
    )
    result = train(config)
    assert result.steps == 2 and np.isfinite(result.last_loss)


def test_a_k2_model_trains_on_long_clips_evaluates_and_exports_exactly(
    long_procedures: Path, tmp_path: Path
) -> None:
    source = open_clip_source(long_procedures)
    videos = load_clip_videos(source, "train")
    model = clip_model(
        clip_frames=LONG_ROWS,
        tokens_per_frame=2,
        feature_dim=int(videos[0].features.shape[1]),
        class_names=source.annotations.step_names,
        task_names=source.annotations.task_names,
    )
    samples = ClipSamples(videos, LONG_ROWS, seed=0, jitter=True)
    tasks = [
        i
        for i, s in enumerate(samples.samples)
        if s.question == TASK and s.end - s.start > LONG_ROWS
    ]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    losses = []
    batch = collate_clips([samples[tasks[0]], samples[0]])  # a long task clip and a step
    assert batch["mask"].sum(1).tolist() == [
        LONG_ROWS,
        samples.samples[0].end - samples.samples[0].start,
    ]
    for _ in range(3):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    model.eval()

    test = load_clip_videos(source, "test", limit=1)
    metrics = clip_metrics(predict_clips(model, test, progress=False, tokens_per_batch=4096))
    assert metrics["task"]["clips"] == 1 and metrics["step"]["clips"] == len(test[0].steps)

    rows = np.asarray(test[0].features)
    folder = long_clip_package(tmp_path, model, rows=rows)
    clip = read_package(folder).clip
    assert clip is not None and clip.verify is not None
    assert clip.verify.max_abs_diff < 1e-3 and clip.tokens_per_frame == 2
    session = ort.InferenceSession(str(folder / clip.file), providers=["CPUExecutionProvider"])
    for size in (LONG_ROWS, 40):  # the whole video in 1,200 rows; its first 40, unpadded
        features, mask = build_clip(rows[: max(size, 40)], size)
        got = session.run(None, {"features": features[None], "mask": mask[None].astype(np.int64)})
        with torch.no_grad():
            want = model.clip_logits(
                torch.from_numpy(features[None]), torch.from_numpy(mask[None]).long()
            )
        for onnx_logits, torch_logits in zip(got, want, strict=True):
            np.testing.assert_allclose(onnx_logits, torch_logits.numpy(), rtol=0, atol=1e-3)
