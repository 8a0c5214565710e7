"""Pose encoder cost per frame on real clips: stateless (detector + landmarks on every
frame) against tracked (the previous frame's ROI; the detector only on a stream's first
frame and when the person is lost), one frame at a time as a stream's frames arrive.

    nice -n 5 .venv/bin/python docs/real-footage/encode_speed.py [--passes 5] [--threads 1]

Frames are the clip sampled at 4 fps (the pose demo's rate) and letterboxed to 512, as
the service receives them; each pass starts a new track, as a new (or resumed) stream
does. Prints ms per frame (median over frames of all passes), the first frame's cost of
a tracked pass, and how many frames ran the detector. Timings depend on the machine's
load: read them beside the load average it prints.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from runtime.cache_files import default_cache_dir
from runtime.pose.encoder import PoseFrameEncoder
from runtime.pose.track import PoseTrack

sys.path.insert(0, str(Path(__file__).resolve().parent))
from label_clips import clips


def timed(encode: Callable[[np.ndarray], np.ndarray], frames: np.ndarray) -> list[float]:
    out = []
    for frame in frames:
        started = time.perf_counter()
        encode(frame[None])
        out.append((time.perf_counter() - started) * 1e3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clips", nargs="+", default=["carphone", "vtest-lawn"])
    args = parser.parse_args()
    from model.export.pose import load_pose_encoder

    encoder: PoseFrameEncoder = load_pose_encoder(default_cache_dir(), threads=args.threads)
    known = clips()
    say(f"load average before: {os.getloadavg()[0]:.2f}")
    say("| clip | frames | stateless ms/frame | tracked ms/frame | tracked first frame ms "
        "| detector frames (tracked) | person found |")  # fmt: skip
    say("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in args.clips:
        _, rgb = known[name].frames(4.0)
        pixels = encoder.preprocess.apply(rgb)
        encoder.encode_pixels(pixels[:2])  # warm up both graphs
        stateless, tracked, first = [], [], []
        detected = 0
        for _ in range(args.passes):
            stateless += timed(encoder.encode_pixels, pixels)
            track, before = PoseTrack(encoder), encoder.detected
            times = timed(track.encode_pixels, pixels)
            detected += encoder.detected - before
            tracked += times[1:]
            first.append(times[0])
        found = float((encoder.encode_pixels(pixels)[:, -1] >= 0.5).mean())
        say(
            f"| {name} | {len(pixels)} | {statistics.median(stateless):.1f} "
            f"| {statistics.median(tracked):.1f} | {statistics.median(first):.1f} "
            f"| {detected / args.passes:.0f} of {len(pixels)} | {found:.0%} |"
        )
    say(f"load average after: {os.getloadavg()[0]:.2f}")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")


if __name__ == "__main__":
    main()
