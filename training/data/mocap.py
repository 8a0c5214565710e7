"""The pose dataset from real human motion: DeepMimic's motion-capture clips (and the rendered
benchmark's gestures put on the same 3D body) seen by random cameras, as the rows the
`pose-blazepose` encoder gives (runtime/pose_features.py), in the standard OAD layout.

    gad data mocap --out data/mocap [--train-videos 160 --test-videos 40 --seed 0]

A video is untrimmed: standing idle (or, now and then, an empty frame) between actions, each
action a segment of one source played at a random speed and body heading, blended in and out
of the standing pose (the blend rows are labelled ambiguous, the ignore class). One camera per
video (camera.py: pitch, distance, framing, image size, mirroring, keypoint noise, lost
joints). Rows at `fps` (4, as the demo extracts). Same seed, same files.

Training videos only (TRAIN_RANGES), what real detection does that a clean camera does not
(docs/pose.md, real footage): whole-person dropouts (runs of 1-3 "nobody" rows in
mid-action, still labelled with the action), waist-cut framing (the picture ends between
the knees and the waist: the legs are out of it, unsure), and partial crops (a side edge
through the body, or the top through the head). They are drawn from a second random stream
of each video's seed, so the rest of the dataset — the test split entirely — is what it was
without them (`augment=False` leaves them out).

Held out for the test split (nothing of it is seen in training):
  camera  body heading relative to the camera within ±10° of the diagonals (45°, 135°, 225°,
          315°); train uses every other heading. Camera pitch 50..60° (train -10..50°).
  speed   playback 0.7-0.8x or 1.25-1.4x (train 0.8-1.25x).
  clips   dance_b and getup_faceup play only in test (train: dance_a, getup_facedown).
Written: features/<session>.npy [T, 40], target_perframe/<session>.npy [T, C] one-hot,
data_info.json (encoder = the pose encoder's description, so a model trained here serves
camera frames through it) and mocap.json (config, held-out ranges, per-class counts, hours).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtime.errors import ConfigError
from runtime.pose.encoder import pose_description
from runtime.pose_features import pose_features_batch
from training.data.bvh import body_joints, load_bvh
from training.data.camera import Camera, CameraRanges
from training.data.kinematics import Skeleton, clip_joints, load_clip, load_skeleton
from training.data.mocap_files import BVH_FOLDER, FOLDER, MOTIONS, URDF
from training.data.motions import ClipMotion, Gesture, Idle, JointClip, Later, blend
from training.data.synthetic import FeatureLayout, one_hot
from training.data_info import DATA_INFO

BACKGROUND, AMBIGUOUS = "background", "ambiguous"
# Class → sources: "mocap:<clip>" (humanoid3d_<clip>.txt) or "gesture:<figure label>".
CLASSES: dict[str, tuple[str, ...]] = {
    "walk": ("mocap:walk",),
    "run": ("mocap:run",),
    "jump": ("mocap:jump", "mocap:jumps_cmu", "gesture:jump"),
    "squat": ("gesture:squat",),
    "kick": ("mocap:kick", "mocap:spinkick", "gesture:kick left leg", "gesture:kick right leg"),
    "punch": ("mocap:punch", "mocap:boxing"),
    "wave": ("gesture:wave left arm", "gesture:wave right arm"),
    "raise arm": ("gesture:raise left arm", "gesture:raise right arm"),
    "clap": ("gesture:clap",),
    "dance": ("mocap:dance_a", "mocap:dance_b"),
    "spin": ("mocap:spin",),
    "cartwheel": ("mocap:cartwheel",),
    "crawl": ("mocap:crawl",),
    "get up": ("mocap:getup_facedown", "mocap:getup_faceup"),
    "fall": ("mocap:fall_boxing",),
    "climb": ("mocap:climb_up_a", "mocap:climb_down_a", "mocap:climb_up_b", "mocap:climb_down_b"),
}
# The BVH recordings (mocap_files.BVH_FILES) cut into clips: name → (file, how a segment
# plays it: "window" a random stretch of a long bout, "once" a whole cut; the cuts, start and
# end in seconds: a name with several cuts plays one of them at random). Times read from the
# joints (docs/motion-sources.md): Boxing_Toes is a boxer in guard, punching (1-22.5 s), who
# falls backwards to sit on the floor (22.7-24.3 s), stays down and gets up (27.0-30.3 s);
# CMU 01_01 is ten standing broad jumps (alone or two or three in a row, with standing and
# turning between them, which the cuts leave out); CMU 01_03 climbs onto a 0.8 m platform
# and down again, twice.
BVH_EXCERPTS: dict[str, tuple[str, str, tuple[tuple[float, float], ...]]] = {
    "boxing": ("Boxing_Toes.bvh", "window", ((1.0, 22.5),)),
    "fall_boxing": ("Boxing_Toes.bvh", "once", ((22.7, 30.3),)),
    "jumps_cmu": (
        "01_01.bvh",
        "once",
        ((1.1, 2.8), (2.8, 7.5), (10.0, 11.7), (12.2, 15.8), (17.7, 19.4), (19.5, 22.9)),
    ),
    "climb_up_a": ("01_03.bvh", "once", ((2.8, 6.3),)),
    "climb_down_a": ("01_03.bvh", "once", ((9.6, 12.0),)),
    "climb_up_b": ("01_03.bvh", "once", ((20.2, 23.6),)),
    "climb_down_b": ("01_03.bvh", "once", ((25.0, 27.6),)),
}
# A clip whose end is another action: from `seconds` into the clip the rest is `label`
# (the boxer's fall and the time on the floor are "fall", standing up again is "get up").
THEN: dict[str, tuple[float, str]] = {"fall_boxing": (4.3, "get up")}
TEST_ONLY_CLIPS = ("dance_b", "getup_faceup", "climb_up_b", "climb_down_b")
_DIAGONALS = (45.0, 135.0, 225.0, 315.0)
# Pitch up to 50° down: real cameras (a corridor, a lawn seen from above) look down far more
# than a webcam; trained to 20°, walkers on vtest.avi's lawn were 10-25 % "walk", trained to
# 50° (and more lost joints) 23-58 % (docs/pose.md). The test split's pitch lies beyond.
TRAIN_RANGES = CameraRanges(
    yaw_sectors=tuple((d + 10.0, d + 80.0) for d in (-45.0, *_DIAGONALS[:3])),
    pitch=(-10.0, 50.0),
    speed=((0.8, 1.25),),
    dropout=(0.0, 0.12),
    # Recipe v3: about a third of training videos are framed with a cut, and the person
    # flickers out for a row or three in up to 8 % of rows (real footage, docs/pose.md).
    waist_cut=0.2,
    side_cut=0.1,
    top_cut=0.05,
    person_dropout=(0.0, 0.08),
)
TEST_RANGES = CameraRanges(
    yaw_sectors=tuple((d - 10.0, d + 10.0) for d in _DIAGONALS),
    pitch=(50.0, 60.0),
    speed=((0.7, 0.8), (1.25, 1.4)),
)


def class_names() -> list[str]:
    return [BACKGROUND, *CLASSES, AMBIGUOUS]


@dataclass(frozen=True, kw_only=True)
class MocapConfig:
    videos_train: int = 160
    videos_test: int = 40
    seconds: tuple[float, float] = (60.0, 120.0)  # length of a video
    fps: float = 4.0
    idle: tuple[float, float] = (1.5, 6.0)  # seconds of standing between actions
    action: tuple[float, float] = (2.5, 7.0)  # seconds of a looped clip or a gesture
    nobody: float = 0.12  # chance that a gap is an empty frame instead of standing
    blend: float = 0.4  # seconds to blend into and out of an action, at most
    holdout_clips: bool = True  # TEST_ONLY_CLIPS only in test
    augment: bool = True  # the training split's dropouts and cut framing (TRAIN_RANGES)
    seed: int = 0
    name: str = "MOCAP"

    def __post_init__(self) -> None:
        if self.videos_train < 0 or self.videos_test < 0:
            raise ConfigError(
                f"video counts must be >= 0, got {self.videos_train} / {self.videos_test}"
            )
        for key in ("seconds", "idle", "action"):
            lo, hi = getattr(self, key)
            if not 0 < lo <= hi:
                raise ConfigError(f"{key} must be a range 0 < low <= high, got {lo}..{hi}")
        if self.fps <= 0:
            raise ConfigError(f"fps must be positive, got {self.fps}")
        if not 0 <= self.nobody < 1:
            raise ConfigError(f"nobody must be a chance in [0, 1), got {self.nobody}")


@dataclass(frozen=True)
class Library:
    """The humanoid and the clips as joint positions: DeepMimic's by their names, the BVH
    excerpts by theirs (mocap_files.ensure_mocap_files gives the folder)."""

    skeleton: Skeleton
    clips: dict[str, JointClip]
    # A source with several cuts → the names of its clips ("jumps_cmu" → "jumps_cmu#1", ...).
    cuts: dict[str, list[str]]

    def pick(self, name: str, rng: np.random.Generator) -> JointClip:
        """The clip a source plays: itself, or one of its cuts at random."""
        if name in self.cuts:
            name = str(rng.choice(self.cuts[name]))
        return self.clips[name]

    @classmethod
    def load(cls, folder: Path) -> Library:
        pybullet, bvh_dir = Path(folder) / FOLDER, Path(folder) / BVH_FOLDER
        skeleton = load_skeleton(pybullet / URDF)
        clips = {}
        for clip in map(load_clip, sorted((pybullet / MOTIONS).glob("*.txt"))):
            joints = clip_joints(skeleton, clip)
            clips[clip.name] = JointClip(clip.name, clip.loop, clip.times, joints)
        recordings: dict[str, tuple[float, np.ndarray]] = {}
        cuts: dict[str, list[str]] = {}
        for name, (file, play, spans) in BVH_EXCERPTS.items():
            if file not in recordings:
                bvh = load_bvh(bvh_dir / file)
                recordings[file] = (bvh.frame_time, body_joints(bvh, skeleton))
            step, joints = recordings[file]
            for k, (start, end) in enumerate(spans):
                cut = name if len(spans) == 1 else f"{name}#{k + 1}"
                rows = joints[round(start / step) : round(end / step) + 1]
                times = np.arange(len(rows)) * step
                clips[cut] = JointClip(cut, False, times, rows, window=play == "window")
                if len(spans) > 1:
                    cuts.setdefault(name, []).append(cut)
        needed = {s.split(":")[1] for srcs in CLASSES.values() for s in srcs if "mocap:" in s}
        if missing := sorted(needed - set(clips) - set(cuts)):
            raise ConfigError(f"{folder} lacks the clips {missing}")
        return cls(skeleton, clips, cuts)


@dataclass
class Segment:
    label: int  # index into class_names()
    source: str  # "idle", "nobody" or a CLASSES source
    start: float
    end: float
    motion: Any  # time [n] → joints [n, 13, 3]


def _sources(split: str, cfg: MocapConfig) -> dict[str, tuple[str, ...]]:
    held = {f"mocap:{c}" for c in TEST_ONLY_CLIPS} if cfg.holdout_clips else set()
    if split == "test" or not held:
        return dict(CLASSES)
    return {k: tuple(s for s in v if s not in held) for k, v in CLASSES.items()}


def plan_video(
    lib: Library, cfg: MocapConfig, ranges: CameraRanges, split: str, rng: np.random.Generator
) -> list[Segment]:
    """Idle, action, idle, ... until the video's length; every action class about as often."""
    sources = _sources(split, cfg)
    names = class_names()
    total = rng.uniform(*cfg.seconds)
    deck: list[str] = []
    segments: list[Segment] = []
    t = 0.0
    while True:
        gap = rng.uniform(*cfg.idle)
        kind = "nobody" if segments and rng.random() < cfg.nobody else "idle"
        idle = Idle(lib.skeleton, ranges.draw_yaw(rng), rng)
        segments.append(Segment(0, kind, t, t + gap, idle))
        t += gap
        if t >= total:
            return segments
        if not deck:
            deck = [str(c) for c in rng.permutation(list(CLASSES))]
        label = deck.pop()
        source = str(rng.choice(list(sources[label])))
        speed, yaw = ranges.draw_speed(rng), ranges.draw_yaw(rng)
        kind, name = source.split(":")
        if kind == "mocap":
            clip = lib.pick(name, rng)
            if clip.loop:
                duration = rng.uniform(*cfg.action)
                phase = rng.uniform(0, clip.duration)
            elif clip.window:
                duration = min(rng.uniform(*cfg.action), clip.duration / speed)
                phase = rng.uniform(0, clip.duration - duration * speed)
            else:
                duration, phase = clip.duration / speed, 0.0
            motion: Any = ClipMotion(clip, speed, yaw, phase)
        else:
            duration = rng.uniform(*cfg.action)
            motion = Gesture(lib.skeleton, name, duration, speed, yaw, rng)
        if name in THEN:  # one recording, two actions back to back
            seconds, then = THEN[name]
            split = seconds / speed
            segments.append(Segment(names.index(label), source, t, t + split, motion))
            later = Later(motion, split)
            segments.append(Segment(names.index(then), source, t + split, t + duration, later))
        else:
            segments.append(Segment(names.index(label), source, t, t + duration, motion))
        t += duration


def render_rows(
    segments: list[Segment], cfg: MocapConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(3D joints [T, 13, 3], person-present [T], labels [T]) at the video's row times."""
    times = np.arange(int(segments[-1].end * cfg.fps)) / cfg.fps
    joints = np.zeros((len(times), 13, 3))
    present = rng.uniform(0.75, 1.0, len(times))
    labels = np.zeros(len(times), dtype=np.int64)
    ambiguous = len(class_names()) - 1
    for i, seg in enumerate(segments):
        rows = np.flatnonzero((times >= seg.start) & (times < seg.end))
        if not len(rows):
            continue
        local = times[rows] - seg.start
        joints[rows] = seg.motion(local)
        if seg.source == "nobody":
            present[rows] = rng.uniform(0.0, 0.3, len(rows))
        if seg.label == 0:
            continue
        labels[rows] = seg.label
        ramp = min(cfg.blend, (seg.end - seg.start) / 6)
        for neighbour, w in (
            (segments[i - 1], np.clip(local / ramp, 0, 1)),
            (segments[i + 1], np.clip((seg.end - times[rows]) / ramp, 0, 1)),
        ):
            edge = w < 1
            if edge.any():
                w = w * w * (3 - 2 * w)  # smoothstep
                idle = neighbour.motion(times[rows][edge] - neighbour.start)
                joints[rows[edge]] = blend(idle, joints[rows[edge]], w[edge])
                labels[rows[edge]] = ambiguous
    return joints, present, labels


def mocap_video(
    lib: Library,
    cfg: MocapConfig,
    split: str,
    rng: np.random.Generator,
    augment: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, list[Segment], Camera, np.ndarray]:
    """(features [T, 40] float32, labels [T], segments, camera, the rows a whole-person
    dropout emptied) of one video. `augment` (a second random stream) draws its framing
    and dropouts; None: none."""
    ranges = TEST_RANGES if split == "test" else TRAIN_RANGES
    camera = ranges.draw_camera(rng)
    segments = plan_video(lib, cfg, ranges, split, rng)
    joints, present, labels = render_rows(segments, cfg, rng)
    lost = np.zeros(0, dtype=np.int64)
    if augment is not None:
        camera = ranges.draw_framing(camera, augment)
        lost = np.flatnonzero(ranges.draw_person_dropouts(len(present), augment))
        present[lost] = augment.uniform(0.0, 0.45, len(lost))
    points, vis = camera.observe(joints, rng)
    return pose_features_batch(points, vis, present), labels, segments, camera, lost


def write_mocap_dataset(
    out: Path, cfg: MocapConfig, files: Path, *, progress: bool = True
) -> dict[str, Any]:
    """Write the dataset under `out` from the mocap `files` folder; returns a summary."""
    lib = Library.load(files)
    names = class_names()
    layout = FeatureLayout(out)
    seeds = np.random.SeedSequence(cfg.seed).spawn(cfg.videos_train + cfg.videos_test)
    splits = ["train"] * cfg.videos_train + ["test"] * cfg.videos_test
    stats: dict[str, dict[str, Any]] = {
        s: {"videos": 0, "hours": 0.0, "segments": dict.fromkeys(names[1:-1], 0)}
        for s in ("train", "test")
    }
    sessions: dict[str, Any] = {}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(splits), desc="mocap", unit="video")
    for split, seed in zip(splits, seeds, strict=True):
        # The augmentations' own stream (a child of the video's seed): with or without
        # them, every other draw of the video is the same.
        augment = np.random.default_rng(seed.spawn(1)[0]) if cfg.augment else None
        features, labels, segments, camera, lost = mocap_video(
            lib, cfg, split, np.random.default_rng(seed), augment
        )
        session = layout.add(split, features, one_hot(labels, len(names)))
        stats[split]["videos"] += 1
        stats[split]["hours"] += len(labels) / cfg.fps / 3600
        for seg in segments:
            if seg.label:
                stats[split]["segments"][names[seg.label]] += 1
        sessions[session] = {
            "camera": asdict(camera),
            "segments": [[s.start, s.end, s.source] for s in segments],
            "lost_rows": lost.tolist(),  # rows a whole-person dropout emptied
        }
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    _write_info(out, cfg, layout, names)
    details = {
        "config": asdict(cfg),
        "classes": {name: list(src) for name, src in CLASSES.items()},
        "bvh_excerpts": {name: list(cut) for name, cut in BVH_EXCERPTS.items()},
        "test_only_clips": list(TEST_ONLY_CLIPS) if cfg.holdout_clips else [],
        "ranges": {"train": asdict(TRAIN_RANGES), "test": asdict(TEST_RANGES)},
        "splits": stats,
        "sessions": sessions,
    }
    (Path(out) / "mocap.json").write_text(json.dumps(details, indent=1) + "\n")
    return {
        "dataset": cfg.name,
        "classes": len(names) - 2,
        "videos": f"{stats['train']['videos']} train + {stats['test']['videos']} test",
        "hours": round(stats["train"]["hours"] + stats["test"]["hours"], 2),
        "frames": layout.frames,
        "clips": len({s for srcs in CLASSES.values() for s in srcs if s.startswith("mocap:")}),
    }


def _write_info(out: Path, cfg: MocapConfig, layout: FeatureLayout, names: list[str]) -> None:
    info = {
        cfg.name: {
            "class_names": names,
            "background_index": 0,
            "ignore_index": len(names) - 1,
            "fps": cfg.fps,
            "feature_dirs": ["features"],
            "target_dir": "target_perframe",
            "train_session_set": layout.sessions["train"],
            "test_session_set": layout.sessions["test"],
            "encoder": pose_description(),
            # Actions follow each other at random: the previous action tells nothing.
            "previous_action": False,
        }
    }
    (Path(out) / DATA_INFO).write_text(json.dumps(info, indent=2) + "\n")
