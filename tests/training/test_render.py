"""The rendered action-video benchmark: real files, annotations that match them, seeded."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from gad.cli import main
from runtime.errors import ConfigError
from runtime.video import probe, read_frames
from training.data.figure import ACTIONS, L_ARM, R_ARM, REST, action_pose
from training.data.render import ANNOTATIONS, SPLIT, VIDEO_DIR, RenderConfig, write_benchmark

# Four 30 s videos hold at least nine actions: the deck deals every action once.
SMALL = RenderConfig(videos=4, seconds=30.0, fps=8.0, width=160, height=120, seed=3)


def read_rows(root: Path) -> list[dict[str, str]]:
    with (root / ANNOTATIONS).open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("render")
    write_benchmark(root, SMALL, progress=False)
    return root


def test_layout_and_annotations_match_the_videos(bench: Path) -> None:
    rows = read_rows(bench)
    assert list(rows[0]) == ["video", "start_s", "end_s", "label"]
    assert {r["label"] for r in rows} == set(ACTIONS)  # every action appears
    videos = sorted((bench / VIDEO_DIR).glob("*.mp4"))
    assert [v.name for v in videos] == [f"render_{i:04d}.mp4" for i in range(SMALL.videos)]
    for video in videos:
        info = probe(video)
        assert (info.width, info.height, info.fps) == (160, 120, 8.0)
        assert info.duration_s == pytest.approx(SMALL.seconds)
        mine = sorted(
            (float(r["start_s"]), float(r["end_s"])) for r in rows if r["video"] == video.name
        )
        assert mine, video
        previous_end = 0.0
        for start, end in mine:
            assert SMALL.min_action <= end - start <= SMALL.max_action
            assert start - previous_end >= SMALL.min_gap  # background between actions
            previous_end = end
        assert info.duration_s - previous_end >= SMALL.min_gap
        frames = list(read_frames(video, 4.0))
        assert len(frames) == info.rows(4.0) == 120
    split = json.loads((bench / SPLIT).read_text())
    assert sorted(split["train"] + split["test"]) == [v.stem for v in videos]
    assert len(split["test"]) == 1


def test_same_seed_same_files_other_seed_other_videos(bench: Path, tmp_path: Path) -> None:
    write_benchmark(tmp_path / "again", SMALL, progress=False)
    for name in (ANNOTATIONS, SPLIT, f"{VIDEO_DIR}/render_0002.mp4"):
        assert (tmp_path / "again" / name).read_bytes() == (bench / name).read_bytes(), name
    other = RenderConfig(**{**SMALL.__dict__, "seed": 4, "videos": 1})
    write_benchmark(tmp_path / "other", other, progress=False)
    first = [r for r in read_rows(bench) if r["video"] == "render_0000.mp4"]
    assert read_rows(tmp_path / "other") != first
    a = next(read_frames(bench / VIDEO_DIR / "render_0000.mp4", 1.0)).rgb
    b = next(read_frames(tmp_path / "other" / VIDEO_DIR / "render_0000.mp4", 1.0)).rgb
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 5


def limb_top(rgb: np.ndarray, colour: str) -> int:
    """Top row of the red (or blue) limb pixels."""
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    mask = (r > g + 80) & (r > b + 80) if colour == "red" else (b > r + 80) & (b > g + 40)
    rows = np.flatnonzero(mask.sum(axis=1) >= 2)
    assert rows.size > 3, f"no {colour} limb pixels"
    return int(rows[0])


def test_left_limbs_are_red_and_right_limbs_blue(bench: Path) -> None:
    """Mid-way through "raise left arm" the red arm is up and the blue limbs show only
    below the robe (and the other way round), decoded from the written file: colours and
    RGB order both hold."""
    rows = read_rows(bench)
    for label, up, down in (
        ("raise left arm", "red", "blue"),
        ("raise right arm", "blue", "red"),
    ):
        row = next(r for r in rows if r["label"] == label)
        middle = (float(row["start_s"]) + float(row["end_s"])) / 2
        frame = next(
            read_frames(bench / VIDEO_DIR / row["video"], 8.0, start_s=round(middle * 8) / 8)
        )
        assert limb_top(frame.rgb, up) < limb_top(frame.rgb, down) - 15, label


def test_poses_move_the_named_limb() -> None:
    for action in ACTIONS:
        pose = action_pose(action, 1.0, 3.0, 1.0)
        assert not np.allclose(pose, REST), action
    left = action_pose("raise left arm", 1.5, 3.0, 1.0)
    right = action_pose("raise right arm", 1.5, 3.0, 1.0)
    assert left[L_ARM] > 150 and left[R_ARM] == REST[R_ARM]
    assert right[R_ARM] > 150 and right[L_ARM] == REST[L_ARM]
    with pytest.raises(ConfigError, match="unknown action"):
        action_pose("moonwalk", 1.0, 2.0, 1.0)


def test_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="cannot hold one"):
        RenderConfig(seconds=3.0)
    with pytest.raises(ConfigError, match="at least 64x64"):
        RenderConfig(width=32)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "data", "render", "--out", str(tmp_path), "--videos", "2", "--seconds", "8",
            "--size", "96x72", "--fps", "5", "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wrote {tmp_path}: 2 videos") and "16 s of video" in out
    assert probe(tmp_path / VIDEO_DIR / "render_0001.mp4").width == 96
    with pytest.raises(SystemExit):
        main(["data", "render", "--out", str(tmp_path), "--size", "big"])
