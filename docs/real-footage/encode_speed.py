"""Pose encoder cost per frame on camera-size copies of real clips, before and after issue 26,
side by side in one run: JPEG bytes → decoded frame → row, one frame at a time as a
stream's frames arrive.

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python docs/real-footage/encode_speed.py \
        [--sizes 1280x720 1768x994] [--clips carphone lawn] [--passes 3]

The frames are the clip cut to 16:9 and scaled up to the camera size (camera_clip.py),
sampled at 4 fps and sent as JPEG quality 85 (what `gad bench load` sends). Four ways,
interleaved frame by frame so the machine's load falls on all alike:

  letterbox (before)  the whole JPEG decoded, the frame letterboxed to 512, the detector's
                      224 and the landmark crop cut from that square (the encoder until
                      issue 26; the same encoder given the square reproduces it)
  frame (after)       the JPEG decoded at the reduced size the stream's ROI allows
                      (service/encoding.py `frame_reduction`), the crop cut from that frame

each stateless (detector + landmarks every frame) and tracked (the previous frame's ROI,
as streams and /classify run). Prints medians of ms per frame (decoding included; the
first frame of each tracked pass, a detection, left out), the decode's share, and the
person-found rate. Timings depend on the machine's load: read them beside the load
average it prints.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from runtime.cache_files import default_cache_dir
from runtime.pose.detector import letterbox
from runtime.pose.encoder import PoseFrameEncoder
from runtime.pose.roi import Roi
from service.encoding import frame_reduction
from service.frames import decode_image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from camera_clip import camera_frames

LIMITS = {"max_bytes": 8 << 20, "max_pixels": 4096 * 4096}


class Way:
    """One way to turn a stream's JPEG frames into rows; `track` is its stream's ROI."""

    def __init__(self, encoder: PoseFrameEncoder, *, tracked: bool, cropped: bool) -> None:
        self.encoder, self.tracked, self.cropped = encoder, tracked, cropped
        self.track: Roi | None = None  # units of the longer side (cropped) or square pixels
        self.times: list[float] = []
        self.decode: list[float] = []
        self.found: list[bool] = []
        self.sides: list[int] = []

    def __call__(self, jpeg: bytes) -> None:
        started = time.perf_counter()
        track = self.track if self.tracked else None
        if self.cropped:
            reduce = frame_reduction(self.encoder.preprocess, track)
            rgb = decode_image(jpeg, reduce=reduce, **LIMITS)
            decoded = time.perf_counter()
            frame = self.encoder.preprocess.apply(rgb)[0]
            longer = max(frame.shape[:2])
            roi = None if track is None else track.scaled(longer)
        else:
            rgb = decode_image(jpeg, **LIMITS)
            decoded = time.perf_counter()
            frame, longer = letterbox(rgb, self.encoder.preprocess.size)[0], 1
            roi = track
        rows, (following,) = self.encoder.encode_tracked([frame], [roi])
        self.times.append((time.perf_counter() - started) * 1e3)
        self.decode.append((decoded - started) * 1e3)
        self.found.append(bool(rows[0, -1] >= 0.5))
        self.sides.append(max(rgb.shape[:2]))
        if following is not None and self.cropped:
            following = following.scaled(1.0 / longer)
        self.track = following

    def restart(self) -> None:
        """A new track (a new stream); its first frame's time is left out."""
        self.track = None
        if self.tracked and self.times:
            self.times.pop()


def jpegs(frames: np.ndarray, quality: int = 85) -> list[bytes]:
    out = []
    for rgb in frames:
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, quality])  # fmt: skip
        assert ok
        out.append(data.tobytes())
    return out


def measure(encoder: PoseFrameEncoder, data: list[bytes], passes: int) -> dict[str, Way]:
    ways = {
        f"{crop} {mode}": Way(encoder, tracked=mode == "tracked", cropped=crop == "frame")
        for crop in ("letterbox", "frame")
        for mode in ("stateless", "tracked")
    }
    for way in ways.values():  # warm up the graphs and the first detection
        way(data[0])
        way.times.clear()
        way.restart()
    for _ in range(passes):
        firsts = {name: len(way.times) for name, way in ways.items()}
        for jpeg in data:
            for way in ways.values():
                way(jpeg)
        for name, way in ways.items():
            if way.tracked:  # drop this pass's first frame: a detection
                del way.times[firsts[name]]
            way.track = None
    return ways


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["1280x720", "1768x994"])
    parser.add_argument("--clips", nargs="+", default=["carphone", "lawn"])
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=None, help="first N s of each clip")
    args = parser.parse_args()
    from model.export.pose import load_pose_encoder

    encoder: PoseFrameEncoder = load_pose_encoder(default_cache_dir(), threads=args.threads)
    say(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    say("| clip | frame | frames | way | ms/frame (median) | of it decoding ms "
        "| decoded longer side | person found |")  # fmt: skip
    say("| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |")
    for name in args.clips:
        for size in args.sizes:
            width, height = (int(v) for v in size.split("x"))
            frames = camera_frames(name, (width, height), 4.0)
            if args.seconds is not None:
                frames = frames[: int(args.seconds * 4)]
            data = jpegs(frames)
            for label, way in measure(encoder, data, args.passes).items():
                say(
                    f"| {name} | {size} | {len(data)} | {label} "
                    f"| {statistics.median(way.times):.1f} | {statistics.median(way.decode):.1f} "
                    f"| {statistics.median(way.sides):.0f} | {np.mean(way.found):.0%} |"
                )
    say(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")


if __name__ == "__main__":
    main()
