"""`POST /classify` of a clip package whose model reads the paper's COIN clips: up to
1,200 rows at 2 fps, two tokens per row with "," between rows. A 1,200-row clip is
answered in one pass; a longer one is subsampled to 1,200 rows; a short one goes in
unpadded with the same answer; past the service's clip length limit, a clear 413."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtime.engine import ClipEngine, EngineInputError
from runtime.manifest import read_package
from runtime.windowing import build_clip
from service.settings import Settings
from tests.model.helpers import FEATURE_DIM
from tests.model.long_clips import FPS, LONG_ROWS, long_clip_model, long_clip_package, torch_scores
from tests.service.streaming import client

pytestmark = pytest.mark.integration  # trains and exports a clip package


@pytest.fixture(scope="module")
def long_model():
    return long_clip_model(tokens=2)


@pytest.fixture(scope="module")
def package(long_model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return long_clip_package(tmp_path_factory.mktemp("long"), long_model)


def rows_of(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, FEATURE_DIM)).astype(np.float32)


def test_the_package_says_how_the_model_reads_a_clip(package: Path) -> None:
    clip = read_package(package).clip
    assert clip is not None and clip.max_frames == LONG_ROWS
    assert (clip.tokens_per_frame, clip.frame_separator) == (2, ",")
    assert clip.verify is not None
    assert clip.verify.max_abs_diff < 1e-3  # checked on clips of up to 1,200 rows


def test_a_1200_row_clip_is_answered_like_pytorch(package: Path, long_model) -> None:
    rows = rows_of(LONG_ROWS)
    assert Settings().max_clip_seconds >= LONG_ROWS / FPS  # 10 min: inside the default limit
    with client(package) as http:
        response = http.post("/classify", json={"fps": FPS, "features": rows.tolist()})
    assert response.status_code == 200, response.text
    procedure = response.json()["procedure"]
    assert procedure["rows"] == procedure["frames"] == LONG_ROWS
    step, task, next_step = torch_scores(long_model, rows, LONG_ROWS)
    steps, tasks = long_model.config.class_names, long_model.config.task_names
    for key, probs, names in (
        ("step", step, steps),
        ("task", task, tasks),
        ("next_step", next_step, steps),
    ):
        assert procedure[key]["index"] == int(probs.argmax())
        for name, score in procedure[key]["top"]:
            assert score == pytest.approx(float(probs[names.index(name)]), abs=1e-4)


def test_a_longer_clip_is_subsampled_to_1200_rows(package: Path) -> None:
    rows = rows_of(1500, seed=1)
    engine = ClipEngine.load(package, providers=["cpu"], threads=1)
    features, mask = build_clip(rows, LONG_ROWS)
    expected = engine.classify(features[None], mask[None])
    with client(package) as http:
        procedure = http.post("/classify", json={"fps": FPS, "features": rows.tolist()}).json()[
            "procedure"
        ]
    assert (procedure["rows"], procedure["frames"]) == (1500, LONG_ROWS)
    assert procedure["task"]["score"] == pytest.approx(float(expected.task[0].max()), abs=1e-5)


def test_a_short_clip_goes_in_unpadded_with_the_padded_answer(package: Path) -> None:
    rows = rows_of(30, seed=2)
    engine = ClipEngine.load(package, providers=["cpu"], threads=1)
    features, mask = build_clip(rows, LONG_ROWS)  # what the service sent before: padded
    padded = engine.classify(features[None], mask[None])
    with client(package) as http:
        procedure = http.post("/classify", json={"fps": FPS, "features": rows.tolist()}).json()[
            "procedure"
        ]
    assert (procedure["rows"], procedure["frames"]) == (30, 30)
    for key, probs in (
        ("step", padded.step),
        ("task", padded.task),
        ("next_step", padded.next_step),
    ):
        assert procedure[key]["index"] == int(probs[0].argmax())
        assert procedure[key]["score"] == pytest.approx(float(probs[0].max()), abs=1e-5)


def test_past_the_clip_length_limit_is_a_clear_413(package: Path) -> None:
    limit = Settings().max_clip_seconds
    rows = np.zeros((int(limit * FPS) + 1, FEATURE_DIM), np.float32)
    with client(package) as http:
        response = http.post("/classify", json={"fps": FPS, "features": rows.tolist()})
    assert response.status_code == 413
    assert "over the limit" in response.text and f"{len(rows) / FPS:.1f} s" in response.text


def test_the_engine_refuses_more_rows_than_the_model_reads(package: Path) -> None:
    engine = ClipEngine.load(package, providers=["cpu"], threads=1)
    too_long = np.zeros((1, LONG_ROWS + 1, FEATURE_DIM), np.float32)
    with pytest.raises(EngineInputError, match="reads at most 1200"):
        engine.classify(too_long, np.ones((1, LONG_ROWS + 1)))
