"""Examples of an action the pose demo never saw, made from real motion capture: DeepMimic's
`roll` (or `backflip`) clip, the two clips of the pybullet wheel that `gad data mocap` leaves
out, played between standing idle and seen by a random camera as the pose encoder's rows,
written as the examples store writes a user's examples (service/examples/store.py: the
standard feature layout, dataset "examples", classes = background then the labels, every
example in the train set; the training job splits).

    python docs/teach/mocap_examples.py --out /tmp/roll --label roll --examples 3
    python docs/teach/mocap_examples.py --out /tmp/roll-test --label roll --examples 10 \\
        --cameras test --seed 100      # held-out cameras (headings, pitch, speed)

An example: 0.75-1.25 s standing, `--seconds` of the action (3.5 s: the clip looped at a
random speed and heading), 0.5-1 s standing: about 5 s, 20 rows at 4 fps. The action's rows
(its blend in and out included, as a recording pressed for it holds them) are the label,
the standing rows background. Not a real person in front of a real camera: real motion,
synthetic camera (docs/teach.md says so where the figures are).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from runtime.oad_layout import (
    TARGET_DIR,
    atomic_save,
    atomic_text,
    data_info_entry,
    feature_dir_name,
    one_hot,
    write_data_info,
)
from runtime.pose.encoder import pose_description
from runtime.pose_features import pose_features_batch
from training.data.mocap import (
    TEST_RANGES,
    TRAIN_RANGES,
    Library,
    MocapConfig,
    Segment,
    render_rows,
)
from training.data.mocap_files import ensure_mocap_files
from training.data.motions import ClipMotion, Idle

BACKGROUND = "background"


def example_rows(
    lib: Library, clip_name: str, seconds: float, ranges, rng: np.random.Generator
) -> tuple[np.ndarray, list[str]]:
    skeleton, clip = lib.skeleton, lib.clips[clip_name]
    camera = ranges.draw_camera(rng)
    before, after = rng.uniform(0.75, 1.25), rng.uniform(0.5, 1.0)
    speed, yaw = ranges.draw_speed(rng), ranges.draw_yaw(rng)
    motion = ClipMotion(clip, speed, yaw, float(rng.uniform(0, clip.duration)))
    segments = [
        Segment(0, "idle", 0.0, before, Idle(skeleton, ranges.draw_yaw(rng), rng)),
        Segment(1, f"mocap:{clip_name}", before, before + seconds, motion),
        Segment(0, "idle", before + seconds, before + seconds + after, Idle(skeleton, yaw, rng)),
    ]
    joints, present, labels = render_rows(segments, MocapConfig(), rng)
    points, vis = camera.observe(joints, rng)
    rows = pose_features_batch(points, vis, present)
    return rows, [BACKGROUND if y == 0 else "" for y in labels]


def write_examples(
    out: Path, label: str, count: int, *, clip: str, seconds: float, cameras: str, seed: int
) -> list[str]:
    """Write `count` examples of `label` under `out` (the store's layout); their ids."""
    out = Path(out)
    ranges = TEST_RANGES if cameras == "test" else TRAIN_RANGES
    encoder = pose_description()
    feature_dir = feature_dir_name(encoder["name"])
    (out / feature_dir).mkdir(parents=True, exist_ok=True)
    (out / TARGET_DIR).mkdir(parents=True, exist_ok=True)
    (out / "examples").mkdir(parents=True, exist_ok=True)
    classes = [BACKGROUND, label]
    lib = Library.load(ensure_mocap_files())  # every clip's joints: once, not per example
    ids = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        rows, names = example_rows(lib, clip, seconds, ranges, rng)
        names = [n or label for n in names]
        example = f"{seed:06x}{i:06x}"[-12:]
        atomic_save(out / feature_dir / f"{example}.npy", rows.astype(np.float32))
        labels = np.array([classes.index(n) for n in names])
        atomic_save(out / TARGET_DIR / f"{example}.npy", one_hot(labels, len(classes)))
        record = {"id": example, "rows": len(rows), "fps": 4.0, "source": f"mocap:{clip}",
                  "cameras": cameras}  # fmt: skip
        atomic_text(out / "examples" / f"{example}.json", json.dumps(record) + "\n")
        ids.append(example)
    entry = data_info_entry(
        class_names=classes, fps=4.0, feature_dir=feature_dir, train=ids, test=[],
        encoder=encoder,
    )  # fmt: skip
    write_data_info(out, "examples", entry)
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--label", default="roll")
    parser.add_argument("--clip", default=None, help="DeepMimic clip (default: the label)")
    parser.add_argument("--examples", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.5)
    parser.add_argument("--cameras", choices=("train", "test"), default="train")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    ids = write_examples(
        args.out, args.label, args.examples, clip=args.clip or args.label,
        seconds=args.seconds, cameras=args.cameras, seed=args.seed,
    )  # fmt: skip
    sys.stdout.write(f"{len(ids)} examples of {args.label!r} in {args.out}: {', '.join(ids)}\n")


if __name__ == "__main__":
    main()
