import json
from pathlib import Path

import numpy as np
import pytest

from runtime.errors import ConfigError
from runtime.windowing import WindowSpec, build_window
from tests.training.layout import CLASSES, write_thumos_like
from training.data_info import load_data_info
from training.dataset import TrainWindows, load_split, previous_action, previous_actions

BG, A, B, C, IGNORE = 0, 1, 2, 4, 3  # Ambiguous (3) is the ignored class


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
    assert info.previous_action is False  # THUMOS: no previous action, as the authors do


def test_feature_folders_are_concatenated(tmp_path: Path) -> None:
    root = write_thumos_like(tmp_path)
    dirs = ["rgb_kinetics_resnet50", "flow_kinetics_bninception"]
    info = load_data_info(root, feature_dirs=dirs)
    video = load_split(info, "test")[0]
    assert video.features.shape == (12, 8)
    rgb = np.load(root / dirs[0] / "video_test_1.npy")
    np.testing.assert_array_equal(video.features[:, :6], rgb)


def _previous(labels: list[int], short: int) -> list[int]:
    return previous_actions(np.array(labels), short=short, background=BG, ignore=IGNORE).tolist()


def test_previous_action_is_the_last_other_action_inside_the_short_window() -> None:
    # [bg, A, A, bg, B, B], short window 4 (frames t-3..t).
    assert _previous([BG, A, A, BG, B, B], short=4) == [-1, -1, -1, A, A, A]
    # Short window 3: at frame 5 the window is frames 3..5 and A (frame 2) lies outside it.
    assert _previous([BG, A, A, BG, B, B], short=3) == [-1, -1, -1, A, A, -1]
    # The most recent one wins: C, not B or A.
    assert _previous([A, B, C, BG, BG], short=5) == [-1, A, B, C, C]


def test_previous_action_skips_the_current_label_background_and_ignored_frames() -> None:
    # The last action before frame 2 is A, its own label: none (the old rule said A).
    assert _previous([A, BG, A], short=8) == [-1, A, -1]
    # A frame of the current label is skipped, the other action behind it is found.
    assert _previous([B, A, A, B], short=4) == [-1, B, B, A]
    # Ambiguous (ignored) frames are not actions; they have a previous action themselves.
    assert _previous([BG, A, A, BG, IGNORE, B, B, BG, A], short=4) == [
        -1, -1, -1, A, A, A, -1, B, B,
    ]  # fmt: skip
    assert _previous([IGNORE, IGNORE, BG], short=3) == [-1, -1, -1]
    # Without a background class every other class is an action.
    labels = np.array([0, 1, 1, 0])
    assert previous_actions(labels, short=4, background=None, ignore=None).tolist() == [
        -1, 0, 0, 1,
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="short window must be > 0"):
        previous_action(labels, 2, short=0, background=0, ignore=None)


def _with_previous_action(root: Path, value: object) -> Path:
    path = root / "data_info.json"
    info = json.loads(path.read_text())
    info["THUMOS"]["previous_action"] = value
    path.write_text(json.dumps(info))
    return root


def test_data_info_previous_action_switch(tmp_path: Path) -> None:
    root = write_thumos_like(tmp_path)
    assert load_data_info(root).previous_action is False  # absent: none, as for THUMOS
    assert load_data_info(_with_previous_action(root, True)).previous_action is True
    with pytest.raises(ConfigError, match="previous_action must be true or false, got 'yes'"):
        load_data_info(_with_previous_action(root, "yes"))


def test_training_windows_previous_action_follows_the_switch(tmp_path: Path) -> None:
    # Video 1 of the layout: labels [0 0 0 1 1 1 1 1 3 0 2 2 ...] (Jump = 1, Throw = 2).
    spec = WindowSpec(4, 5)
    off = load_data_info(write_thumos_like(tmp_path / "off"))
    on = load_data_info(_with_previous_action(write_thumos_like(tmp_path / "on"), True))
    for info in (off, on):
        samples = TrainWindows(load_split(info, "train"), info, spec)
        samples.index = [(0, t) for t in (2, 7, 9, 10, 11, 12, 13)]
        got = [samples[i][3] for i in range(len(samples.index))]
        if info is off:
            assert got == [-1] * 7  # switch off: no previous action anywhere
        else:
            # Jump's last frame is 7: it is in the 5-frame windows of frames 9, 10, 11
            # (behind background, Ambiguous and Throw frames) and has left them from 12
            # on; frame 2 has seen no action, frame 7 only its own.
            assert got == [-1, -1, 1, 1, 1, -1, -1]


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
    # The authors' conventions: ignore_index = background (EK100, CrossTask) or -100
    # (TVSeries, Ego4D-GoalStep) ignores nothing.
    for ignore in (0, -100):
        info["THUMOS"]["ignore_index"] = ignore
        (root / "data_info.json").write_text(json.dumps(info))
        assert load_data_info(root).ignore_index is None
    info["THUMOS"]["ignore_index"] = 4
    (root / "data_info.json").write_text(json.dumps(info))
    with pytest.raises(ConfigError, match=r"ignore_index 4 outside 0\.\.3"):
        load_data_info(root)
    info["THUMOS"]["ignore_index"] = 3
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
        assert previous == -1  # THUMOS-style data: no previous action
        expected, expected_mask = build_window(video.features, t, spec)
        np.testing.assert_array_equal(window, expected)
        np.testing.assert_array_equal(mask, expected_mask)
        assert label == info.to_model_index(int(video.labels[t]))
    strides = {
        b[1] - a[1] for a, b in zip(samples.index, samples.index[1:], strict=False) if a[0] == b[0]
    }
    assert strides <= {3, 6}  # stride = short (6 where an Ambiguous frame was skipped)
