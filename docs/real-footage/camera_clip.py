"""Camera-size copies of the real clips, for speed and load figures (issue 26).

None of the registry clips is camera-sized (carphone 176×144, bikes 640×272, vtest
768×576), so each is cut to 16:9 around its person and scaled up (cv2 INTER_CUBIC) to a
camera's frame size, then written as a motion-JPEG AVI (quality 95) OUTSIDE the repository:

    .venv/bin/python docs/real-footage/camera_clip.py --size 1280x720 --out /tmp/clips
    gad bench load --model CACHE/demo-pose/models/demo-pose --video /tmp/clips/carphone-1280x720.avi

An upscaled clip has the pixel count of a camera frame (what decoding, resizing and
cropping cost), not its detail: the person is as sharp as the small original.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from label_clips import Clip, clips

# 16:9 cuts (x, y, w, h in the original frame) and the part of each clip used.
CUTS: dict[str, tuple[str, float, float | None, tuple[int, int, int, int]]] = {
    # a man in a car, head and shoulders: a person in every frame
    "carphone": ("carphone", 0.0, None, (0, 22, 176, 99)),
    # pedestrians crossing the lawn in front of the camera, 50-74 s
    "lawn": ("vtest", 50.0, 74.0, (96, 312, 384, 216)),
    # the street montage: a cyclist riding, standing, legs walking by
    "bikes": ("bikes", 0.0, None, (78, 0, 484, 272)),
}


def camera_frames(name: str, size: tuple[int, int], fps: float) -> np.ndarray:
    """The clip `name` (CUTS) sampled at `fps`, cut to 16:9 and scaled to `size` (w, h)."""
    source, start, end, (x, y, w, h) = CUTS[name]
    base = clips()[source]
    _, frames = Clip(base.path, start_s=start, end_s=end).frames(fps)
    return np.stack(
        [cv2.resize(f[y : y + h, x : x + w], size, interpolation=cv2.INTER_CUBIC) for f in frames]
    )


def write_avi(path: Path, frames: np.ndarray, fps: float) -> None:
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1280x720", help="WxH (default 1280x720)")
    parser.add_argument("--out", type=Path, required=True, help="a folder outside the repository")
    parser.add_argument("--clips", nargs="+", default=sorted(CUTS))
    parser.add_argument("--fps", type=float, default=8.0, help="frames/s written (default 8)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.clips:
        path = args.out / f"{name}-{width}x{height}.avi"
        write_avi(path, camera_frames(name, (width, height), args.fps), args.fps)
        sys.stdout.write(f"{path}\n")


if __name__ == "__main__":
    main()
