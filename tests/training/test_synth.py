from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from training.data.synth import SynthConfig, class_names, write_synth_dataset
from training.data_info import load_data_info
from training.dataset import load_split

SMALL = SynthConfig(videos_train=6, videos_test=2, feature_dim=32)


def test_layout_and_classes(tmp_path: Path) -> None:
    summary = write_synth_dataset(tmp_path, SMALL)
    info = load_data_info(tmp_path)
    names = info.model_class_names
    assert len(names) - 1 >= 10  # actions besides background
    words = [n.split()[-1] for n in names[1:]]
    assert all(words.count(w) >= 2 for w in words)  # labels share words
    videos = load_split(info, "train") + load_split(info, "test")
    assert sum(len(v) for v in videos) == summary["frames"]
    labels = np.concatenate([v.labels for v in videos])
    assert (labels == 0).mean() > 0.2  # untrimmed: background between actions
    assert (labels == info.ignore_index).any()


def test_seeded(tmp_path: Path) -> None:
    write_synth_dataset(tmp_path / "a", SMALL)
    write_synth_dataset(tmp_path / "b", SMALL)
    write_synth_dataset(
        tmp_path / "c", SynthConfig(videos_train=6, videos_test=2, feature_dim=32, seed=1)
    )
    a = np.load(tmp_path / "a" / "features" / "train_0003.npy")
    np.testing.assert_array_equal(a, np.load(tmp_path / "b" / "features" / "train_0003.npy"))
    assert (tmp_path / "a" / "data_info.json").read_text() == (
        tmp_path / "b" / "data_info.json"
    ).read_text()
    assert not np.array_equal(a[:10], np.load(tmp_path / "c" / "features" / "train_0003.npy")[:10])


def test_open_and_close_need_the_window(tmp_path: Path) -> None:
    """One frame cannot tell "open X" from "close X"; its trend over a few frames can."""
    write_synth_dataset(
        tmp_path, SynthConfig(videos_train=30, videos_test=0, feature_dim=32, noise=0.2)
    )
    info = load_data_info(tmp_path)
    videos = load_split(info, "train")
    opening = [i for i, n in enumerate(class_names()) if n.startswith("open ")]
    closing = [i for i, n in enumerate(class_names()) if n.startswith("close ")]
    frame_x, trend_x, y = [], [], []
    for v in videos:
        for t in range(6, len(v)):
            if v.labels[t] in opening + closing and v.labels[t - 6] == v.labels[t]:
                frame_x.append(v.features[t])
                trend_x.append(np.concatenate([v.features[t], v.features[t] - v.features[t - 6]]))
                y.append(v.labels[t] in opening)
    y = np.asarray(y)
    half = len(y) // 2

    def accuracy(x: list) -> float:
        x = np.asarray(x)
        clf = LogisticRegression(max_iter=2000).fit(x[:half], y[:half])
        return float(clf.score(x[half:], y[half:]))

    single, windowed = accuracy(frame_x), accuracy(trend_x)
    assert single < 0.7, single
    assert windowed > 0.9, windowed
