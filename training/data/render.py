"""A rendered action-video benchmark: a stick figure acting out nine actions, as real videos.

    OUT/videos/render_0000.mp4 ...   mp4v, `fps` frames per second, `size` pixels
    OUT/annotations.csv              video,start_s,end_s,label (one row per action)
    OUT/split.json                   {"train": [session, ...], "test": [...]} (file stems)
    OUT/render.json                  the config, the class list and per-video facts

`gad data extract OUT/videos --annotations OUT/annotations.csv --split OUT/split.json`
turns it into a feature dataset. Everything not annotated is background: the figure
standing idle or walking sideways.

The actions share words the way real labels do ("raise left arm" / "raise right arm" /
"wave left arm", "kick left leg" / "kick right leg", "squat", "jump", "clap hands"). The
features come from ImageNet CNNs with global average pooling, which barely see
left from right (pooling forgets where, training on flipped images forgets which way), so
the figure's left limbs are red and its right limbs blue, and it wears a long robe that
hides a limb at rest: a raised left arm or a kicked left leg adds red to the picture,
the right ones blue, which pooled features keep. Coloured limbs alone are not enough:
"red arm up, blue arm down" and "blue arm up, red arm down" hold the same colours. A
linear probe on single-frame EfficientNet-Lite0 features of the default benchmark tells
left from right (among frames it puts in either class of a pair) in 98 % / 84-95 % /
77 % of raise / wave / kick frames with the robe, 84-88 % / 44-54 % / 62-64 % without.
The figure fills most of the frame height and stays in the central square that a centre
crop keeps (256 → 224 of a 4:3 frame keeps the middle 66 % of its width, 88 % of its
height).

Each video draws a background (solid, gradient, blurred texture, stripes, checks or a
wall and floor, all in muted colours so the limbs stand out), a figure size, robe, boot
and skin colours, a lighting drift (and sometimes a light switched), camera shake and
zoom drift, and sensor noise. Actions last 2-6 s with 1.5-5 s of background between them;
the action order is a shuffled deck, so every class gets its share. Same seed, same
videos.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from runtime.errors import ConfigError
from training.data.figure import ACTIONS, Look, action_pose, background_pose, draw_figure, envelope

BACKGROUND_KINDS = ("idle", "walk")
VIDEO_DIR, ANNOTATIONS = "videos", "annotations.csv"
SPLIT, RENDER_INFO = "split.json", "render.json"


@dataclass(frozen=True)
class RenderConfig:
    videos: int = 48
    seconds: float = 40.0
    fps: float = 10.0  # native frame rate of the written files
    width: int = 320
    height: int = 240
    test_fraction: float = 0.25
    min_action: float = 2.0  # seconds
    max_action: float = 6.0
    min_gap: float = 1.5
    max_gap: float = 5.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.videos < 1 or self.seconds <= 0 or self.fps <= 0:
            raise ConfigError(
                f"need videos >= 1, seconds > 0, fps > 0; got {self.videos}, "
                f"{self.seconds}, {self.fps}"
            )
        if self.width < 64 or self.height < 64:
            raise ConfigError(f"frames must be at least 64x64, got {self.width}x{self.height}")
        if not 0 < self.min_action <= self.max_action or not 0 < self.min_gap <= self.max_gap:
            raise ConfigError("need 0 < min_action <= max_action and 0 < min_gap <= max_gap")
        if self.seconds < self.min_gap * 2 + self.min_action:
            raise ConfigError(
                f"{self.seconds} s videos cannot hold one {self.min_action} s action between "
                f"two {self.min_gap} s gaps"
            )
        if not 0 <= self.test_fraction < 1:
            raise ConfigError(f"test_fraction must be in [0, 1), got {self.test_fraction}")


@dataclass(frozen=True)
class Segment:
    start_ms: int
    end_ms: int
    label: str  # an action, or a background kind ("idle", "walk")

    @property
    def is_action(self) -> bool:
        return self.label in ACTIONS


def schedule(cfg: RenderConfig, rng: np.random.Generator, deal: Callable[[], str]) -> list[Segment]:
    """Background and action segments that tile [0, duration); `deal` picks each action."""
    duration_ms = round(_frames(cfg) / cfg.fps * 1000)

    def span(low: float, high: float) -> int:
        return 50 * int(rng.integers(round(low * 20), round(high * 20) + 1))  # 50 ms steps

    segments: list[Segment] = []
    t = 0
    while True:
        gap, action = span(cfg.min_gap, cfg.max_gap), span(cfg.min_action, cfg.max_action)
        if t + gap + action + round(cfg.min_gap * 1000) > duration_ms:
            break
        segments.append(Segment(t, t + gap, BACKGROUND_KINDS[int(rng.integers(2))]))
        segments.append(Segment(t + gap, t + gap + action, deal()))
        t += gap + action
    if not segments:  # too short for the drawn lengths: one shortest action in the middle
        action = round(cfg.min_action * 1000)
        start = (duration_ms - action) // 2
        segments = [Segment(0, start, "idle"), Segment(start, start + action, deal())]
        t = start + action
    segments.append(Segment(t, duration_ms, BACKGROUND_KINDS[int(rng.integers(2))]))
    return segments


def _frames(cfg: RenderConfig) -> int:
    return max(1, round(cfg.seconds * cfg.fps))


def render_frames(segments: list[Segment], look: Look, cfg: RenderConfig, rng: np.random.Generator):
    """Yield the video's frames (RGB uint8), one per 1/fps seconds."""
    n = _frames(cfg)
    noise_bank = [
        rng.normal(0.0, look.noise, size=(cfg.height, cfg.width, 3)).astype(np.int16)
        for _ in range(8)
    ]
    shake = np.zeros(2)
    x_offset, direction = 0.0, 1.0 if rng.random() < 0.5 else -1.0
    walk_speed = cfg.width * rng.uniform(0.05, 0.09)  # pixels per second
    limit = cfg.width * 0.07
    seg = 0
    for i in range(n):
        t = i / cfg.fps
        t_ms = t * 1000
        while seg < len(segments) - 1 and t_ms >= segments[seg].end_ms:
            seg += 1
        s = segments[seg]
        tau, duration = (t_ms - s.start_ms) / 1000, (s.end_ms - s.start_ms) / 1000
        if s.is_action:
            pose = action_pose(s.label, tau, duration, look.tempo)
        else:
            pose = background_pose(s.label, tau, duration, look.tempo)
            if s.label == "walk":
                x_offset += direction * walk_speed * envelope(tau, duration, 0.4) / cfg.fps
                if abs(x_offset) > limit:
                    x_offset, direction = math.copysign(limit, x_offset), -direction
        image = look.scene.copy()
        draw_figure(image, pose, look, look.centre + x_offset)
        # Camera: shake (a damped random walk) and a slow zoom around the centre.
        shake = 0.8 * shake + rng.normal(0.0, look.shake * 0.45, size=2)
        zoom = 1.0 + look.zoom_drift * math.sin(2 * math.pi * t / 17.0)
        matrix = cv2.getRotationMatrix2D((cfg.width / 2, cfg.height / 2), 0.0, zoom)
        matrix[:, 2] += shake
        image = cv2.warpAffine(
            image, matrix, (cfg.width, cfg.height), borderMode=cv2.BORDER_REFLECT
        )
        # Light: gain with a slow drift, maybe a switch, a colour cast; then sensor noise.
        gain = look.gain * (1 + look.drift * math.sin(2 * math.pi * t / look.drift_period))
        if look.light_switch is not None and t >= look.light_switch:
            gain *= look.switch_gain
        lit = image.astype(np.int16) * (gain * look.cast).astype(np.float32)
        noisy = lit.astype(np.int16) + noise_bank[int(rng.integers(len(noise_bank)))]
        yield np.clip(noisy, 0, 255).astype(np.uint8)


def _deck(rng: np.random.Generator) -> Callable[[], str]:
    """Deal actions from shuffled decks of all of them: balanced classes, random order."""
    cards: list[str] = []

    def deal() -> str:
        if not cards:
            cards.extend(ACTIONS[i] for i in rng.permutation(len(ACTIONS)))
        return cards.pop()

    return deal


def write_video(path: Path, frames, cfg: RenderConfig) -> int:
    """Write RGB frames as mp4v to `path` (atomically); returns the frame count."""
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    writer = cv2.VideoWriter(
        str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), cfg.fps, (cfg.width, cfg.height)
    )
    if not writer.isOpened():
        raise ConfigError(f"OpenCV cannot write mp4v video to {tmp} (no FFmpeg backend?)")
    count = 0
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            count += 1
    finally:
        writer.release()
    os.replace(tmp, path)
    return count


def write_benchmark(out: Path, cfg: RenderConfig, *, progress: bool = True) -> dict[str, object]:
    """Render the benchmark under `out`; returns a summary. Same config, same videos."""
    out = Path(out)
    (out / VIDEO_DIR).mkdir(parents=True, exist_ok=True)
    root = np.random.SeedSequence(cfg.seed)
    plan_seed, *video_seeds = root.spawn(cfg.videos + 1)
    plan_rng = np.random.default_rng(plan_seed)
    deal = _deck(plan_rng)
    plans = [schedule(cfg, plan_rng, deal) for _ in range(cfg.videos)]
    order = plan_rng.permutation(cfg.videos)
    n_test = round(cfg.videos * cfg.test_fraction)
    test = {int(i) for i in order[:n_test]}

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.videos, desc="render", unit="video")
    rows: list[tuple[str, float, float, str]] = []
    videos: dict[str, dict[str, object]] = {}
    for i, (segments, seed) in enumerate(zip(plans, video_seeds, strict=True)):
        name = f"render_{i:04d}.mp4"
        rng = np.random.default_rng(seed)
        look = Look.draw(rng, width=cfg.width, height=cfg.height, seconds=cfg.seconds)
        frames = write_video(out / VIDEO_DIR / name, render_frames(segments, look, cfg, rng), cfg)
        rows += [
            (name, s.start_ms / 1000, s.end_ms / 1000, s.label) for s in segments if s.is_action
        ]
        videos[Path(name).stem] = {
            "file": f"{VIDEO_DIR}/{name}",
            "frames": frames,
            "duration_s": frames / cfg.fps,
            "split": "test" if i in test else "train",
            "scene": look.scene_kind,
            "actions": sum(s.is_action for s in segments),
        }
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()

    tmp = out / f".{ANNOTATIONS}.tmp"
    with tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["video", "start_s", "end_s", "label"])
        writer.writerows((v, f"{a:.3f}", f"{b:.3f}", label) for v, a, b, label in rows)
    os.replace(tmp, out / ANNOTATIONS)
    split = {
        part: [s for s, v in videos.items() if v["split"] == part] for part in ("train", "test")
    }
    (out / SPLIT).write_text(json.dumps(split, indent=2) + "\n")
    info = {"config": asdict(cfg), "actions": list(ACTIONS), "videos": videos}
    (out / RENDER_INFO).write_text(json.dumps(info, indent=2) + "\n")
    counts = {a: sum(r[3] == a for r in rows) for a in ACTIONS}
    return {
        "videos": cfg.videos,
        "train": len(split["train"]),
        "test": len(split["test"]),
        "seconds": sum(float(v["duration_s"]) for v in videos.values()),
        "actions": len(rows),
        "per_class": f"{min(counts.values())}-{max(counts.values())}",
    }
