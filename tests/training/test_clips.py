"""COIN annotations and the clip samplers: boundaries, subsampling, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.clip import NEXT, STEP, TASK
from runtime.errors import ConfigError
from runtime.windowing import build_clip, clip_indices
from training.clips import (
    ClipSamples,
    clip_samples,
    collate_clips,
    load_clip_videos,
    open_clip_source,
)
from training.data.coin import load_coin

FPS = 2.0


def write_dataset(root: Path, database: dict, frames: dict[str, int], dim: int = 4) -> Path:
    """coin.json + features/<video>.npy whose rows hold their own index (row r = r)."""
    (root / "features").mkdir(parents=True)
    for video, n in frames.items():
        rows = np.repeat(np.arange(n, dtype=np.float32)[:, None], dim, axis=1)
        np.save(root / "features" / f"{video}.npy", rows)
    (root / "coin.json").write_text(json.dumps({"database": database}))
    return root


def video(task: str, subset: str, *steps: tuple[str, float, float], recipe: int | None = None):
    entry = {
        "class": task,
        "subset": subset,
        "annotation": [
            {"id": str(STEP_IDS[label]), "segment": [a, b], "label": label} for label, a, b in steps
        ],
    }
    if recipe is not None:
        entry["recipe_type"] = recipe
    return entry


STEP_IDS = {"boil water": 7, "add tea": 3, "pour water": 5, "wash cup": 1}


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    database = {
        # steps listed out of order: sorted by start on loading
        "v1": video(
            "make tea",
            "training",
            ("pour water", 6.0, 8.0),
            ("boil water", 1.0, 3.5),
            ("add tea", 4.0, 5.0),
            recipe=2,
        ),
        "v2": video(
            "wash up", "training", ("wash cup", 0.0, 30.0), ("pour water", 30.0, 31.0), recipe=0
        ),
        "v3": video(
            "make tea", "testing", ("boil water", 0.5, 2.0), ("add tea", 2.0, 3.0), recipe=2
        ),
        "v4": video("wash up", "testing", ("wash cup", 0.0, 1.0), recipe=0),  # no features
    }
    return write_dataset(tmp_path, database, {"v1": 20, "v2": 64, "v3": 8})


def test_classes_come_from_the_file_in_id_order(dataset: Path) -> None:
    coin = load_coin(dataset / "coin.json")
    assert coin.step_names == ("wash cup", "add tea", "pour water", "boil water")  # ids 1 3 5 7
    assert coin.task_names == ("wash up", "make tea")  # recipe_type 0, 2
    assert [v.video_id for v in coin.split("train")] == ["v1", "v2"]
    assert [s.label for s in coin.split("train")[0].steps] == [
        "boil water",
        "add tea",
        "pour water",
    ]


def test_segments_become_rows_at_the_features_fps(dataset: Path) -> None:
    source = open_clip_source(dataset, feature_dirs=["features"], fps=FPS)
    videos = load_clip_videos(source, "train")
    steps = {name: i for i, name in enumerate(source.annotations.step_names)}
    # [1.0, 3.5) s at 2 fps → rows [2, 7); [4, 5) → [8, 10); [6, 8) → [12, 16)
    assert videos[0].steps == [
        (steps["boil water"], 2, 7),
        (steps["add tea"], 8, 10),
        (steps["pour water"], 12, 16),
    ]
    # v2's segment runs past its 64 rows (32 s): clipped to the features
    assert videos[1].steps[-1][1:] == (60, 62)


def test_samples_per_task(dataset: Path) -> None:
    source = open_clip_source(dataset, feature_dirs=["features"], fps=FPS)
    videos = load_clip_videos(source, "train")
    samples = clip_samples(videos)
    v1 = [s for s in samples if s.video == 0]
    steps = [s for s in v1 if s.question == STEP]
    nexts = [s for s in v1 if s.question == NEXT]
    tasks = [s for s in v1 if s.question == TASK]
    assert [(s.start, s.end) for s in steps] == [(2, 7), (8, 10), (12, 16)]
    # next: the frames of step i, labelled with step i + 1; the last step has none
    assert [(s.start, s.end, s.label) for s in nexts] == [
        (2, 7, steps[1].label),
        (8, 10, steps[2].label),
    ]
    # task: the whole annotated span, labelled with the video's task
    assert [(t.start, t.end, t.label) for t in tasks] == [(2, 16, videos[0].task)]
    assert all(s.goal == videos[0].task for s in v1)


def test_long_clips_are_subsampled_uniformly(dataset: Path) -> None:
    source = open_clip_source(dataset, feature_dirs=["features"], fps=FPS)
    videos = load_clip_videos(source, "train")
    items = ClipSamples(videos, max_frames=8, questions=(STEP,))
    long = next(i for i, s in enumerate(items.samples) if s.end - s.start == 60)
    clip, mask, *_ = items[long]
    rows = clip[:, 0]
    assert mask.all() and len(rows) == 8
    # middles of 8 equal bins of rows [0, 60): 3.75, 11.25, ... → floor
    assert rows.tolist() == [3, 11, 18, 26, 33, 41, 48, 56]
    short = next(i for i, s in enumerate(items.samples) if s.end - s.start == 2)
    clip, mask, *_ = items[short]
    assert mask.tolist() == [0] * 6 + [1, 1]  # left padding, like a window
    assert clip[6:, 0].tolist() == [8, 9] and not clip[:6].any()


def test_training_jitter_stays_inside_the_bins() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        picked = clip_indices(10, 110, 10, rng=rng)
        bins = (picked - 10) // 10
        assert bins.tolist() == list(range(10))
    assert clip_indices(3, 7, 10).tolist() == [3, 4, 5, 6]  # short: every row


def test_jitter_is_seeded_per_epoch(dataset: Path) -> None:
    source = open_clip_source(dataset, feature_dirs=["features"], fps=FPS)
    videos = load_clip_videos(source, "train")
    a = ClipSamples(videos, 8, seed=1, jitter=True)
    b = ClipSamples(videos, 8, seed=1, jitter=True)
    long = next(i for i, s in enumerate(a.samples) if s.end - s.start == 60)
    assert np.array_equal(a[long][0], b[long][0])
    first = a[long][0].copy()
    a.set_epoch(1)
    assert not np.array_equal(a[long][0], first)


def test_collate_makes_the_model_batch(dataset: Path) -> None:
    source = open_clip_source(dataset, feature_dirs=["features"], fps=FPS)
    items = ClipSamples(load_clip_videos(source, "train"), 8)
    batch = collate_clips([items[i] for i in range(len(items))])
    assert batch["features"].shape == (len(items), 8, 4)
    assert set(batch) == {"features", "mask", "labels", "questions", "goals"}
    assert sorted(set(batch["questions"].tolist())) == [STEP, TASK, NEXT]


def test_videos_without_features_are_skipped_but_not_all(dataset: Path, caplog) -> None:
    source = open_clip_source(dataset, feature_dirs=["features"], fps=FPS)
    assert [v.video_id for v in load_clip_videos(source, "test")] == ["v3"]
    assert "1 test videos have no feature files" in caplog.text
    with pytest.raises(ConfigError, match="no test videos"):
        load_clip_videos(open_clip_source(dataset, feature_dirs=["other"], fps=FPS), "test")


def test_fps_and_features_are_needed_without_data_info(dataset: Path) -> None:
    with pytest.raises(ConfigError, match="--feature-dirs and --fps"):
        open_clip_source(dataset)


def test_build_clip_rejects_bad_spans() -> None:
    rows = np.zeros((5, 2), np.float32)
    with pytest.raises(ValueError, match="start < end"):
        build_clip(rows, 4, start=3, end=3)
    with pytest.raises(ValueError, match="beyond"):
        build_clip(rows, 4, end=6)


BAD = {
    "not json": ("{", "not valid JSON"),
    "no database": (json.dumps({"videos": {}}), "database"),
    "no class": (
        json.dumps({"database": {"a": {"subset": "training", "annotation": []}}}),
        "task name",
    ),
    "bad subset": (
        json.dumps({"database": {"a": {"class": "t", "subset": "dev", "annotation": [{}]}}}),
        "subset 'dev'",
    ),
    "no steps": (
        json.dumps({"database": {"a": {"class": "t", "subset": "training", "annotation": []}}}),
        "no step segments",
    ),
    "reversed segment": (
        json.dumps({"database": {"a": {"class": "t", "subset": "training",
                    "annotation": [{"label": "s", "segment": [5, 2]}]}}}),
        r"\[5, 2\]",
    ),
    "segment not numbers": (
        json.dumps({"database": {"a": {"class": "t", "subset": "training",
                    "annotation": [{"label": "s", "segment": ["a", 2]}]}}}),
        "segment",
    ),
    "one id two names": (
        json.dumps({"database": {"a": {"class": "t", "subset": "training", "annotation": [
            {"id": "1", "label": "s", "segment": [0, 1]},
            {"id": "1", "label": "r", "segment": [1, 2]}]}}}),
        "share id",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_annotations_get_clear_errors(tmp_path: Path, case: str) -> None:
    text, message = BAD[case]
    path = tmp_path / "coin.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_coin(path)


def test_a_step_after_the_features_end_is_an_error(tmp_path: Path) -> None:
    database = {"v": video("make tea", "training", ("boil water", 20.0, 22.0))}
    root = write_dataset(tmp_path, database, {"v": 10})
    source = open_clip_source(root, feature_dirs=["features"], fps=FPS)
    with pytest.raises(ConfigError, match="starts at 20 s but the features end at 5 s"):
        load_clip_videos(source, "train")
