"""What a camera client should send the pose demo: frame width and JPEG quality, measured
on real clips (issue 26).

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python docs/real-footage/send_size.py \
        --model CACHE/demo-pose/models/demo-pose [--clips vtest-walk lawn-1280 ...]

For each clip (sampled at the model's 4 fps) and each width × quality: every frame scaled
down to the width (cv2 INTER_AREA, aspect kept; never up), JPEG-encoded at the quality,
then what a stream does with it: decoded as service/encoding.py's `frame_reduction` says
(reduced where the encoder needs no more), encoded with the stream's ROI tracked (in units
of the frame's longer side), labelled by the package's head on each frame's window. The
reference is the clip at its own size, lossless (what `/classify` of the file computes).
Prints per setting: frame labels equal to the reference's (%), the clip label
(service/classify.py `clip_label`), frames with a person found, mean JPEG bytes per frame,
and the server's median ms per frame for decode + encoder (one thread).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from runtime.encoders import open_frame_encoder
from runtime.engine import OnnxEngine
from runtime.manifest import read_package, resolve_package_dir
from runtime.pose.detector import letterbox as letterbox_frame
from runtime.pose.encoder import PoseFrameEncoder
from runtime.pose.roi import Roi
from runtime.windowing import build_windows
from service.classify import clip_label
from service.encoding import frame_reduction
from service.frames import decode_image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from camera_clip import camera_frames
from label_clips import Clip, clips

LIMITS = {"max_bytes": 16 << 20, "max_pixels": 4096 * 4096}
WIDTHS = (320, 480, 640, 960, 1280)
QUALITIES = (60, 80, 92)


def clip_frames(name: str, fps: float) -> np.ndarray:
    """Named clips: label_clips.py's, vtest's walking part (52-80 s, 768×576 as it is), and
    the camera-size copies of camera_clip.py (`<cut>-1280`: 1280×720)."""
    if name.endswith("-1280"):
        return camera_frames(name.removesuffix("-1280"), (1280, 720), fps)
    if name == "vtest-walk":
        vtest = clips()["vtest"]
        return Clip(vtest.path, start_s=52.0, end_s=80.0).frames(fps)[1]
    return clips()[name].frames(fps)[1]


def scaled(frame: np.ndarray, width: int) -> np.ndarray:
    height, full = frame.shape[:2]
    if width >= full:
        return frame
    size = (width, max(1, round(height * width / full)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def jpeg(frame: np.ndarray, quality: int) -> bytes:
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def stream_rows(
    encoder: PoseFrameEncoder, frames: list[bytes] | list[np.ndarray], *, letterbox: bool = False
) -> tuple[np.ndarray, list[float]]:
    """A stream's rows for JPEG frames (or raw frames: lossless, what `/classify` of a
    video computes) and its ms per frame. `letterbox`: the encoder before issue 26 (every
    frame decoded whole and letterboxed to 512, the crop cut from that square)."""
    track: Roi | None = None
    rows, times = [], []
    for item in frames:
        started = time.perf_counter()
        if isinstance(item, bytes):
            reduce = None if letterbox else frame_reduction(encoder.preprocess, track)
            rgb = decode_image(item, reduce=reduce, **LIMITS)
        else:
            rgb = item
        if letterbox:
            rgb = letterbox_frame(rgb, encoder.preprocess.size)[0]
        frame = encoder.preprocess.apply(rgb)[0]
        longer = max(frame.shape[:2])
        roi = None if track is None else track.scaled(longer)
        row, (following,) = encoder.encode_tracked([frame], [roi])
        times.append((time.perf_counter() - started) * 1e3)
        track = None if following is None else following.scaled(1.0 / longer)
        rows.append(row[0])
    return np.stack(rows), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--clips", nargs="+", default=["vtest-walk", "bikes", "lawn-1280"])
    parser.add_argument("--widths", nargs="+", type=int, default=list(WIDTHS))
    parser.add_argument("--qualities", nargs="+", type=int, default=list(QUALITIES))
    parser.add_argument(
        "--classify",
        action="store_true",
        help="instead: /classify of the clip scaled to each width (lossless), before and after",
    )
    parser.add_argument("--ways", nargs="+", default=["letterbox", "frame"])
    args = parser.parse_args()
    package = read_package(resolve_package_dir(args.model))
    encoder = open_frame_encoder(package, providers=("cpu",), threads=1)
    assert isinstance(encoder, PoseFrameEncoder)
    engine = OnnxEngine.load(package, providers=("cpu",))

    def scores(rows: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                engine.classify(
                    *build_windows(rows, np.arange(i, min(i + 64, len(rows))), package.window)
                )
                for i in range(0, len(rows), 64)
            ]
        )

    classes, background = package.classes, package.background_index
    if args.classify:
        return by_width(encoder, scores, classes, background, args)
    say(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    say("| clip | sent | quality | frame labels = reference | clip label | person found "
        "| KiB/frame | server ms/frame |")  # fmt: skip
    say("| --- | --- | ---: | ---: | --- | ---: | ---: | ---: |")
    for name in args.clips:
        frames = clip_frames(name, package.fps)
        height, full = frames.shape[1:3]
        rows, times = stream_rows(encoder, frames)
        ref = scores(rows)
        labels = ref.argmax(1)
        clip = clip_label(ref, labels, classes, background)["label"]
        say(
            f"| {name} | {full}×{height} lossless (reference) | – | 100% | {clip} "
            f"| {np.mean(rows[:, -1] >= 0.5):.0%} | – | {statistics.median(times):.1f} |"
        )
        for width in [w for w in args.widths if w < full] + [full]:
            small = [scaled(frame, width) for frame in frames]
            for quality in args.qualities:
                data = [jpeg(frame, quality) for frame in small]
                rows, times = stream_rows(encoder, data)
                got = scores(rows)
                mine = got.argmax(1)
                label = clip_label(got, mine, classes, background)["label"]
                say(
                    f"| {name} | {width} px | {quality} | {np.mean(mine == labels):.0%} "
                    f"| {label}{'' if label == clip else ' ≠'} | {np.mean(rows[:, -1] >= 0.5):.0%} "
                    f"| {np.mean([len(d) for d in data]) / 1024:.1f} "
                    f"| {statistics.median(times):.1f} |"
                )
    say(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


def by_width(
    encoder: PoseFrameEncoder,
    scores: Callable[[np.ndarray], np.ndarray],
    classes: tuple[str, ...],
    background: int | None,
    args: argparse.Namespace,
) -> None:
    """`/classify` of each clip scaled to each width (frames as a video decode gives them,
    no JPEG), the encoder before issue 26 (letterbox) and after (frame), each against its
    own full-size answer."""
    say(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    say("| clip | width | encoder | frame labels = full size | clip label | person found "
        "| ms/frame |")  # fmt: skip
    say("| --- | ---: | --- | ---: | --- | ---: | ---: |")
    for name in args.clips:
        frames = clip_frames(name, 4.0)
        full = frames.shape[2]
        for way in args.ways:
            reference: np.ndarray | None = None
            clip = ""
            for width in [full, *sorted((w for w in args.widths if w < full), reverse=True)]:
                small = [scaled(frame, width) for frame in frames]
                rows, times = stream_rows(encoder, small, letterbox=way == "letterbox")
                got = scores(rows)
                labels = got.argmax(1)
                label = clip_label(got, labels, classes, background)["label"]
                if reference is None:
                    reference, clip = labels, label
                say(
                    f"| {name} | {width} | {way} | {np.mean(labels == reference):.0%} "
                    f"| {label}{'' if label == clip else ' ≠'} | {np.mean(rows[:, -1] >= 0.5):.0%} "
                    f"| {statistics.median(times):.1f} |"
                )
    say(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
