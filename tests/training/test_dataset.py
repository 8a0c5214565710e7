import json
from pathlib import Path

import numpy as np
import pytest

from runtime.errors import ConfigError
from runtime.windowing import WindowSpec, build_window
from tests.training.layout import CLASSES, write_thumos_like
from training.data_info import load_data_info
from training.dataset import TrainWindows, load_split, previous_actions


def test_reads_the_standard_layout(tmp_path: Path) -> None:
    root = write_thumos_like(tmp_path)
    info = load_data_info(root, "THUMOS")
    assert info.class_names == tuple(CLASSES) and info.ignore_index == 3
    assert info.fps == 4.0 and info.background_index == 0
    assert info.model_class_names == ("Background", "Jump", "Throw")
    videos = load_split(info, "train")
    assert [v.session for v in videos] == ["video_validation_1", "video_validation_2"]
    assert isinstance(videos[0].features, np.memmap)  # one feature folder: memory-mapped
    assert videos[0].features.shape == (20, 6)
    assert videos[0].labels[:11].tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 3, 0, 2]
    assert videos[0].previous[10] == 1  # Throw comes after Jump


def test_feature_folders_are_concatenated(tmp_path: Path) -> None:
    root = write_thumos_like(tmp_path)
    dirs = ["rgb_kinetics_resnet50", "flow_kinetics_bninception"]
    info = load_data_info(root, feature_dirs=dirs)
    video = load_split(info, "test")[0]
    assert video.features.shape == (12, 8)
    rgb = np.load(root / dirs[0] / "video_test_1.npy")
    np.testing.assert_array_equal(video.features[:, :6], rgb)


def test_previous_action() -> None:
    labels = np.array([0, 1, 1, 0, 3, 2, 2, 0, 1])
    assert previous_actions(labels, background=0, ignore=3).tolist() == [
        -1,
        -1,
        -1,
        1,
        1,
        1,
        1,
        2,
        2,
    ]


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (
            lambda r: (r / "rgb_kinetics_resnet50" / "video_validation_2.npy").unlink(),
            "missing feature file",
        ),
        (
            lambda r: np.save(r / "target_perframe" / "video_validation_1.npy", np.zeros((20, 3))),
            r"expected \[frames, 4\] \(4 classes in data_info.json\)",
        ),
        (
            lambda r: np.save(
                r / "rgb_kinetics_resnet50" / "video_validation_1.npy", np.zeros((19, 6))
            ),
            "feature and target lengths differ",
        ),
        (
            lambda r: np.save(r / "rgb_kinetics_resnet50" / "video_validation_1.npy", np.zeros(20)),
            r"expected \[frames, features\]",
        ),
        (
            lambda r: np.save(r / "target_perframe" / "video_validation_1.npy", np.zeros((20, 4))),
            "all-zero rows",
        ),
    ],
)
def test_malformed_data_is_a_clear_error(tmp_path: Path, break_it, message: str) -> None:
    root = write_thumos_like(tmp_path)
    break_it(root)
    with pytest.raises(ConfigError, match=message):
        load_split(load_data_info(root), "train")


def test_malformed_data_info(tmp_path: Path) -> None:
    root = write_thumos_like(tmp_path)
    with pytest.raises(ConfigError, match="has no dataset 'EK100'"):
        load_data_info(root, "EK100")
    info = json.loads((root / "data_info.json").read_text())
    info["THUMOS"]["ignore_index"] = 0
    (root / "data_info.json").write_text(json.dumps(info))
    with pytest.raises(ConfigError, match="both 0"):
        load_data_info(root)
    del info["THUMOS"]["test_session_set"]
    (root / "data_info.json").write_text(json.dumps(info))
    with pytest.raises(ConfigError, match=r"lacks \['test_session_set'\]"):
        load_data_info(root)
    with pytest.raises(ConfigError, match="not found"):
        load_data_info(tmp_path / "nowhere")


def test_training_windows(tmp_path: Path) -> None:
    info = load_data_info(write_thumos_like(tmp_path))
    videos = load_split(info, "train")
    spec = WindowSpec(4, 3)
    samples = TrainWindows(videos, info, spec, seed=0)
    first_frames = set()
    for epoch in range(6):
        samples.set_epoch(epoch)
        first_frames.add(next(t for v, t in samples.index if v == 0))
    assert len(first_frames) > 1  # the phase changes between epochs
    samples.set_epoch(0)
    again = TrainWindows(videos, info, spec, seed=0)
    assert again.index == samples.index  # seeded
    for i, (v, t) in enumerate(samples.index):
        video = videos[v]
        assert video.labels[t] != 3  # Ambiguous frames are never targets
        window, mask, label, previous = samples[i]
        prev = int(video.previous[t])
        assert previous == (info.to_model_index(prev) if prev >= 0 else -1)
        expected, expected_mask = build_window(video.features, t, spec)
        np.testing.assert_array_equal(window, expected)
        np.testing.assert_array_equal(mask, expected_mask)
        assert label == info.to_model_index(int(video.labels[t]))
    strides = {
        b[1] - a[1] for a, b in zip(samples.index, samples.index[1:], strict=False) if a[0] == b[0]
    }
    assert strides <= {3, 6}  # stride = short (6 where an Ambiguous frame was skipped)
