import json
from collections import Counter
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from runtime.errors import ConfigError
from training.data.procedures import (
    COIN_FILE,
    STEPS,
    TASKS,
    ProcedureConfig,
    class_names,
    write_procedure_dataset,
)
from training.data_info import load_data_info
from training.dataset import load_split

SMALL = ProcedureConfig(videos_train=12, videos_test=6)
# Many videos, few dimensions: enough segments per class for the statistical checks.
LARGE = ProcedureConfig(videos_train=240, videos_test=240, feature_dim=16)


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("procedures")
    write_procedure_dataset(root, LARGE)
    return root


def _segments(root: Path, fps: float) -> list[tuple[str, str, int, np.ndarray]]:
    """(subset, task, step index, features of the step's rows) per annotated step."""
    database = json.loads((root / COIN_FILE).read_text())["database"]
    out = []
    for video, entry in database.items():
        features = np.load(root / "features" / f"{video}.npy")
        for step in entry["annotation"]:
            start, end = (round(s * fps) for s in step["segment"])
            out.append((entry["subset"], entry["class"], int(step["id"]), features[start:end]))
    return out


def _mean(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=0)


def _mean_and_trend(x: np.ndarray) -> np.ndarray:
    half = len(x) // 2
    return np.concatenate([x.mean(axis=0), x[half:].mean(axis=0) - x[:half].mean(axis=0)])


def _nearest_centroid(train: list, test: list) -> float:
    """Accuracy on `test` of nearest class centroids fit on `train`: lists of (x, label)."""
    labels = sorted({y for _, y in train})
    centroids = np.stack([np.mean([x for x, y in train if y == c], axis=0) for c in labels])
    hits = [labels[int(np.argmin(((centroids - x) ** 2).sum(axis=1)))] == y for x, y in test]
    return float(np.mean(hits))


def _step_accuracy(root: Path, fps: float) -> float:
    """Nearest centroid on a step's mean + trend: its test steps named right, fit on train."""
    split: dict[str, list] = {"training": [], "testing": []}
    for subset, _, step, x in _segments(root, fps):
        split[subset].append((_mean_and_trend(x), step))
    return _nearest_centroid(split["training"], split["testing"])


def test_names_and_successors() -> None:
    names = class_names()
    assert names == ["background", *STEPS] and len(set(names)) == len(names)
    assert len(set(TASKS)) == len(TASKS)
    for name in [*names, *TASKS]:
        assert name == name.lower() and "," not in name
    assert set(STEPS) == {s for steps in TASKS.values() for s in steps}
    tasks_of = Counter(s for steps in TASKS.values() for s in steps)
    assert sum(n > 1 for n in tasks_of.values()) >= 5  # steps are shared between tasks
    # Next step from the current one (tasks equally likely): Bayes accuracy < 100 %.
    successors: dict[str, Counter] = {}
    for steps in TASKS.values():
        for step, after in pairwise(steps):
            successors.setdefault(step, Counter())[after] += 1
    pairs = sum(sum(c.values()) for c in successors.values())
    bayes = sum(max(c.values()) for c in successors.values()) / pairs
    assert 0.7 < bayes < 1.0, bayes


def test_seeded(tmp_path: Path) -> None:
    write_procedure_dataset(tmp_path / "a", SMALL)
    write_procedure_dataset(tmp_path / "b", SMALL)
    write_procedure_dataset(tmp_path / "c", ProcedureConfig(videos_train=12, videos_test=6, seed=1))
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.*"))
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    for f in (Path("features/train_0003.npy"), Path(COIN_FILE)):
        assert (tmp_path / "a" / f).read_bytes() != (tmp_path / "c" / f).read_bytes(), f


def test_noise_changes_the_features_only(tmp_path: Path) -> None:
    """`--noise` makes the same videos harder (the clip comparison's noisier set): the same
    targets and step annotations, features that are the noiseless ones plus the same draw of
    noise scaled by the std, and steps that a nearest centroid tells apart less often."""
    sets = {}
    for noise in (0.0, 0.35, 1.5):
        root = tmp_path / str(noise)
        write_procedure_dataset(root, ProcedureConfig(videos_train=60, videos_test=30, noise=noise))
        sets[noise] = root
    for f in (Path(COIN_FILE), Path("target_perframe/test_0004.npy")):
        assert len({(root / f).read_bytes() for root in sets.values()}) == 1, f
    feats = {n: np.load(root / "features/test_0004.npy") for n, root in sets.items()}
    unit = (feats[0.35] - feats[0.0]) / 0.35
    assert np.abs(unit).mean() > 0.5  # a real draw of noise, not a copy
    np.testing.assert_allclose(feats[1.5], feats[0.0] + 1.5 * unit, atol=1e-4)
    accuracy = {noise: _step_accuracy(root, ProcedureConfig().fps) for noise, root in sets.items()}
    assert accuracy[0.35] > 0.95 and accuracy[1.5] < accuracy[0.35] - 0.1, accuracy


def test_coin_agrees_with_targets(tmp_path: Path) -> None:
    summary = write_procedure_dataset(tmp_path, SMALL)
    database = json.loads((tmp_path / COIN_FILE).read_text())["database"]
    info = json.loads((tmp_path / "data_info.json").read_text())[SMALL.name]
    assert list(database) == info["train_session_set"] + info["test_session_set"]
    assert info["train_session_set"] == [f"train_{i:04d}" for i in range(SMALL.videos_train)]
    assert info["test_session_set"] == [f"test_{i:04d}" for i in range(SMALL.videos_test)]
    frames = 0
    tasks: dict[str, Counter] = {"training": Counter(), "testing": Counter()}
    for video, entry in database.items():
        subset = "training" if video in info["train_session_set"] else "testing"
        assert entry["subset"] == subset
        tasks[subset][entry["class"]] += 1
        assert entry["recipe_type"] == list(TASKS).index(entry["class"])
        targets = np.load(tmp_path / "target_perframe" / f"{video}.npy")
        assert targets.dtype == np.float32 and targets.shape[1] == 1 + len(STEPS)
        assert (targets.sum(axis=1) == 1).all()
        frames += len(targets)
        assert entry["duration"] == pytest.approx(len(targets) / SMALL.fps)
        expected = np.zeros(len(targets), dtype=int)
        previous_end = 0.0
        for step in entry["annotation"]:
            start_s, end_s = step["segment"]
            assert previous_end <= start_s < end_s <= entry["duration"]
            previous_end = end_s
            start, end = start_s * SMALL.fps, end_s * SMALL.fps
            assert start == round(start) and end == round(end)
            assert step["label"] == STEPS[int(step["id"])]
            expected[round(start) : round(end)] = int(step["id"]) + 1
        assert [s["label"] for s in entry["annotation"]] == list(TASKS[entry["class"]])
        np.testing.assert_array_equal(targets.argmax(axis=1), expected)
        assert expected[0] == 0 and expected[-1] == 0  # background before and after
    assert frames == summary["frames"]
    assert summary["videos"] == SMALL.videos_train + SMALL.videos_test
    for counts in tasks.values():
        assert set(counts) == set(TASKS)  # every task in both splits, balanced
        assert max(counts.values()) - min(counts.values()) <= 1


def test_loads_as_oad_dataset(tmp_path: Path) -> None:
    write_procedure_dataset(tmp_path, SMALL)
    info = load_data_info(tmp_path)
    assert info.name == SMALL.name and info.fps == SMALL.fps
    assert info.class_names == tuple(class_names()) == info.model_class_names
    assert info.background_index == 0 and info.ignore_index is None
    train, test = load_split(info, "train"), load_split(info, "test")
    assert (len(train), len(test)) == (SMALL.videos_train, SMALL.videos_test)
    for video in train + test:
        assert video.features.dtype == np.float32
        assert video.features.shape == (len(video), SMALL.feature_dim)
        assert video.targets.shape == (len(video), len(class_names()))
    labels = np.concatenate([v.labels for v in train])
    assert 0.05 < (labels == 0).mean() < 0.5  # untrimmed: background around the steps
    assert set(labels.tolist()) <= set(range(len(class_names())))


def test_steps_separable_over_the_step(tmp_path: Path) -> None:
    """Nearest centroid on a step's mean + trend recognises the step, far above chance."""
    write_procedure_dataset(tmp_path, SMALL)
    accuracy = _step_accuracy(tmp_path, SMALL.fps)
    assert accuracy > 0.8, accuracy  # chance: 1 / 17


def test_steps_on_one_object_need_the_trend(large: Path) -> None:
    """'boil water' and 'pour water' share an object and time-reversed verb signals: their
    means match, their trends do not."""
    segments = _segments(large, LARGE.fps)
    pairs = [("boil water", "pour water"), ("wash vegetables", "cut vegetables")]
    for pair in pairs:
        ids = {STEPS.index(s) for s in pair}
        chosen = [(subset, s, x) for subset, _, s, x in segments if s in ids]

        def accuracy(feature, chosen=chosen) -> float:
            train = [(feature(x), s) for subset, s, x in chosen if subset == "training"]
            test = [(feature(x), s) for subset, s, x in chosen if subset == "testing"]
            return _nearest_centroid(train, test)

        mean_only, with_trend = accuracy(_mean), accuracy(_mean_and_trend)
        assert mean_only < 0.7, (pair, mean_only)
        assert with_trend > 0.95, (pair, with_trend)


def test_task_not_in_a_shared_step(large: Path) -> None:
    """'crack eggs' looks the same in an omelette and in scrambled eggs: its features alone
    give the task at chance; the sequence of steps has to tell."""
    crack = STEPS.index("crack eggs")
    tasks = ("make omelette", "scramble eggs")
    chosen = [(subset, t, x) for subset, t, s, x in _segments(large, LARGE.fps) if s == crack]
    train = [(_mean_and_trend(x), t) for subset, t, x in chosen if subset == "training"]
    test = [(_mean_and_trend(x), t) for subset, t, x in chosen if subset == "testing"]
    assert {t for _, t in train} == {t for _, t in test} == set(tasks)
    assert len(test) >= 60
    accuracy = _nearest_centroid(train, test)
    assert 0.3 < accuracy < 0.7, accuracy


@pytest.mark.parametrize(
    "bad",
    [
        {"min_step": 1},
        {"min_step": 9, "max_step": 8},
        {"min_gap": -1},
        {"fps": 0.0},
        {"feature_dim": 0},
        {"videos_test": -1},
    ],
)
def test_config_checked(bad: dict) -> None:
    with pytest.raises(ConfigError):
        ProcedureConfig(**bad)
