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

ACTIONS = (
    "raise left arm",
    "raise right arm",
    "wave left arm",
    "wave right arm",
    "kick left leg",
    "kick right leg",
    "squat",
    "jump",
    "clap hands",
)
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


# --- Poses -------------------------------------------------------------------------------
# A pose is 10 numbers: limb angles in degrees (0 = hanging down, 90 = straight out to the
# figure's side, 180 = straight up; negative = across the body), then the height the figure
# is lifted off the ground (share of its height) and its sideways offset (share of width).
L_ARM, L_FORE, R_ARM, R_FORE, L_THIGH, L_SHIN, R_THIGH, R_SHIN, LIFT, SHIFT = range(10)
REST = np.array([4, 3, 4, 3, 4, 2, 4, 2, 0, 0], dtype=np.float64)
ARM = {"left": (L_ARM, L_FORE), "right": (R_ARM, R_FORE)}
LEG = {"left": (L_THIGH, L_SHIN), "right": (R_THIGH, R_SHIN)}


def _ramp(tau: float, duration: float, ramp: float) -> float:
    """0 → 1 over `ramp` seconds at the start, 1 → 0 over the end (smoothstep)."""
    x = min(1.0, max(0.0, min(tau, duration - tau) / max(ramp, 1e-6)))
    return x * x * (3 - 2 * x)


def _bump(phase: float) -> float:
    """One smooth 0 → 1 → 0 cycle over phase [0, 1)."""
    return math.sin(math.pi * (phase % 1.0)) ** 2


def _pulse(phase: float, rise: float = 0.3) -> float:
    """Up over `rise` of a cycle, held, down over the last `rise` (smoothstep edges)."""
    x = min(1.0, (phase % 1.0) / rise, (1.0 - phase % 1.0) / rise)
    return x * x * (3 - 2 * x)


def action_pose(label: str, tau: float, duration: float, tempo: float) -> np.ndarray:
    """The pose `tau` seconds into an action of `duration` s; `tempo` scales its speed."""
    pose = REST.copy()
    words = label.split()
    side = "left" if "left" in words else "right"
    if words[0] == "raise":
        env = _ramp(tau, duration, min(0.7, duration / 4))
        arm, fore = ARM[side]
        pose[arm], pose[fore] = 170.0, 176.0
    elif words[0] == "wave":
        env = _ramp(tau, duration, 0.45)
        arm, fore = ARM[side]
        pose[arm] = 135.0
        pose[fore] = 160.0 + 32.0 * math.sin(2 * math.pi * 1.3 * tempo * tau)
    elif words[0] == "kick":
        env = _ramp(tau, duration, 0.15)
        kick = _pulse(tau * tempo / 2.0, rise=0.25)
        thigh, shin = LEG[side]
        pose[thigh], pose[shin] = 4 + 72 * kick, 2 + 80 * kick
    elif label == "squat":
        env = _ramp(tau, duration, 0.3)
        down = _bump(tau * tempo / 1.8)
        for thigh, shin in LEG.values():
            pose[thigh], pose[shin] = 4 + 62 * down, 2 - 18 * down
        for arm, fore in ARM.values():  # hands on the hips
            pose[arm], pose[fore] = 38.0, -45.0
    elif label == "jump":
        env = _ramp(tau, duration, 0.2)
        phase = (tau * tempo / 0.95) % 1.0
        crouch = _bump(phase / 0.3) if phase < 0.3 else 0.0
        air = math.sin(math.pi * (phase - 0.3) / 0.6) if 0.3 <= phase < 0.9 else 0.0
        for thigh, shin in LEG.values():
            pose[thigh], pose[shin] = 4 + 32 * crouch + 8 * air, 2 - 14 * crouch
        for arm, fore in ARM.values():
            pose[arm] = 7 + 20 * crouch + 140 * air
            pose[fore] = 5 + 10 * crouch + 150 * air
        pose[LIFT] = 0.11 * air
    elif label == "clap hands":
        env = _ramp(tau, duration, 0.35)
        closed = (1 + math.cos(2 * math.pi * 1.6 * tempo * tau)) / 2
        for arm, fore in ARM.values():
            pose[arm] = 22 + 14 * (1 - closed)
            pose[fore] = -72 * closed + 40 * (1 - closed)
    else:
        raise ConfigError(f"unknown action {label!r}; actions are {list(ACTIONS)}")
    pose[:SHIFT] = REST[:SHIFT] + env * (pose[:SHIFT] - REST[:SHIFT])
    return pose


def background_pose(kind: str, tau: float, duration: float, tempo: float) -> np.ndarray:
    """Idle standing (sway, shifting weight) or walking sideways (step, swing the arms)."""
    pose = REST.copy()
    if kind == "walk":
        env = _ramp(tau, duration, 0.4)
        step = math.sin(2 * math.pi * 1.4 * tempo * tau)
        pose[L_THIGH] += env * 12 * (1 + step) / 2
        pose[R_THIGH] += env * 12 * (1 - step) / 2
        pose[L_SHIN] += env * 6 * (1 + step) / 2
        pose[R_SHIN] += env * 6 * (1 - step) / 2
        pose[L_ARM] += env * 9 * step
        pose[R_ARM] -= env * 9 * step
        pose[LIFT] = env * 0.008 * abs(step)
    else:
        sway = math.sin(2 * math.pi * 0.3 * tempo * tau)
        pose[L_ARM] += 3 * sway
        pose[R_ARM] -= 3 * sway
        pose[L_THIGH] += 2 * max(0.0, sway)
        pose[R_THIGH] += 2 * max(0.0, -sway)
    return pose


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


# --- Appearance ------------------------------------------------------------------------
LEFT_COLOUR = (222, 38, 32)  # RGB: the figure's left limbs are red ...
RIGHT_COLOUR = (34, 84, 228)  # ... its right limbs blue
TORSO_COLOURS = ((120, 120, 120), (70, 150, 70), (200, 180, 60), (90, 70, 50), (140, 90, 160))
BOOT_COLOURS = ((45, 45, 45), (80, 60, 40), (110, 110, 100))
SKIN_COLOURS = ((240, 200, 170), (200, 150, 110), (140, 95, 60), (90, 60, 40))


def _muted(rng: np.random.Generator) -> np.ndarray:
    """A low-saturation RGB colour, so the red and blue limbs stand out on it."""
    hsv = np.array(
        [[[rng.uniform(0, 180), rng.uniform(10, 90), rng.uniform(70, 235)]]], dtype=np.float32
    )
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def background_image(width: int, height: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A static scene (RGB uint8) and its kind."""
    kind = ("solid", "gradient", "texture", "stripes", "checks", "room")[int(rng.integers(6))]
    a, b = _muted(rng), _muted(rng)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == "solid":
        mix = np.zeros((height, width), np.float32)
    elif kind == "gradient":
        angle = rng.uniform(0, 2 * math.pi)
        proj = xx * math.cos(angle) + yy * math.sin(angle)
        mix = (proj - proj.min()) / max(float(np.ptp(proj)), 1.0)
    elif kind == "texture":
        cells = rng.random((max(2, height // 24), max(2, width // 24))).astype(np.float32)
        mix = cv2.GaussianBlur(
            cv2.resize(cells, (width, height), interpolation=cv2.INTER_CUBIC), (0, 0), 4
        )
        mix = np.clip(mix, 0, 1)
    elif kind == "stripes":
        period, angle = rng.uniform(12, 48), rng.uniform(0, math.pi)
        proj = xx * math.cos(angle) + yy * math.sin(angle)
        mix = 0.5 + 0.5 * np.sin(2 * math.pi * proj / period)
    elif kind == "checks":
        size = int(rng.integers(16, 48))
        mix = (((xx // size) + (yy // size)) % 2).astype(np.float32)
        mix = cv2.GaussianBlur(mix, (0, 0), 1.0)
    else:  # room: a wall with a floor below the horizon
        horizon = height * rng.uniform(0.55, 0.75)
        mix = np.clip((yy - horizon) / 3.0, 0, 1) * (0.7 + 0.3 * (yy / height))
    image = a[None, None, :] * (1 - mix[..., None]) + b[None, None, :] * mix[..., None]
    return np.clip(image, 0, 255).astype(np.uint8), kind


@dataclass
class Look:
    """What one video looks like, drawn once per video."""

    scene: np.ndarray
    scene_kind: str
    figure_height: float  # pixels, head top to feet
    ground: float  # y of the feet
    centre: float  # x of the figure at rest
    torso: tuple[int, int, int]  # the robe
    boots: tuple[int, int, int]
    skin: tuple[int, int, int]
    limb_shade: float  # the red/blue limbs are this much darker or lighter
    gain: float
    drift: float  # lighting drift amplitude, share of the gain
    drift_period: float
    light_switch: float | None  # a time at which the light level steps
    switch_gain: float
    cast: np.ndarray  # per-channel colour cast
    shake: float  # pixels
    zoom_drift: float
    noise: float
    tempo: float

    @classmethod
    def draw(cls, cfg: RenderConfig, rng: np.random.Generator) -> Look:
        scene, kind = background_image(cfg.width, cfg.height, rng)
        return cls(
            scene=scene,
            scene_kind=kind,
            figure_height=cfg.height * rng.uniform(0.6, 0.68),
            ground=cfg.height * rng.uniform(0.86, 0.91),
            centre=cfg.width * rng.uniform(0.46, 0.54),
            torso=TORSO_COLOURS[int(rng.integers(len(TORSO_COLOURS)))],
            boots=BOOT_COLOURS[int(rng.integers(len(BOOT_COLOURS)))],
            skin=SKIN_COLOURS[int(rng.integers(len(SKIN_COLOURS)))],
            limb_shade=rng.uniform(0.8, 1.1),
            gain=rng.uniform(0.75, 1.15),
            drift=rng.uniform(0.03, 0.15),
            drift_period=rng.uniform(6, 20),
            light_switch=rng.uniform(0.2, 0.8) * cfg.seconds if rng.random() < 0.3 else None,
            switch_gain=rng.uniform(0.7, 1.3),
            cast=rng.uniform(0.92, 1.08, size=3),
            shake=rng.uniform(0.5, 3.0),
            zoom_drift=rng.uniform(0.0, 0.04),
            noise=rng.uniform(2.0, 7.0),
            tempo=rng.uniform(0.85, 1.15),
        )


def _xy(x: float, y: float) -> np.ndarray:
    return np.array([x, y], dtype=np.float64)


def _direction(angle_deg: float, outward: float) -> np.ndarray:
    """Unit vector (image x right, y down) for a limb angle; `outward` is ±1 by side."""
    a = math.radians(angle_deg)
    return _xy(outward * math.sin(a), math.cos(a))


def draw_figure(image: np.ndarray, pose: np.ndarray, look: Look, x: float) -> None:
    """Draw the figure in place on an RGB image: robe, head, red left / blue right limbs.

    The robe hides limbs at rest (hanging arms, legs down to the shins); a limb moved away
    from the body is drawn in front of it. So a raised left arm adds red to the picture
    and a raised right arm blue: a difference that survives global average pooling, which
    a mere swap of which coloured arm is up (red up + blue down vs blue up + red down)
    would not.
    """
    h = look.figure_height
    width, leg_width = max(2, round(0.06 * h)), max(2, round(0.075 * h))
    upper_arm, fore_arm, thigh, shin = 0.16 * h, 0.15 * h, 0.235 * h, 0.235 * h
    hip_half, shoulder_half, torso_len, head_r = 0.055 * h, 0.1 * h, 0.3 * h, 0.075 * h
    # The figure faces the camera: its left side is on the right of the picture.
    out = {"left": 1.0, "right": -1.0}
    ankles, knees = {}, {}
    for side, (i_thigh, i_shin) in LEG.items():
        hip = _xy(out[side] * hip_half, 0.0)
        knees[side] = hip + thigh * _direction(pose[i_thigh], out[side])
        ankles[side] = knees[side] + shin * _direction(pose[i_shin], out[side])
    # Feet on the ground (the lower one), then lifted by a jump; x from the walk track.
    drop = look.ground - max(a[1] for a in ankles.values()) - pose[LIFT] * h
    origin = np.array([x, drop])
    neck = _xy(0.0, -torso_len)
    shoulder_y = neck[1] + 0.03 * h
    limb_colour = {
        side: tuple(int(min(255, c * look.limb_shade)) for c in colour)
        for side, colour in (("left", LEFT_COLOUR), ("right", RIGHT_COLOUR))
    }

    def pt(p: np.ndarray) -> tuple[int, int]:
        q = (p + origin) * 16  # 4 bits of sub-pixel precision
        return round(float(q[0])), round(float(q[1]))

    def line(a: np.ndarray, b: np.ndarray, colour: tuple[int, ...], w: int = width) -> None:
        cv2.line(image, pt(a), pt(b), colour, w, cv2.LINE_AA, shift=4)

    # Limb segments, each behind the robe while it hangs near the body, else in front.
    behind, front = [], []
    for side in ("left", "right"):
        hip = _xy(out[side] * hip_half, 0.0)
        i_thigh, i_shin = LEG[side]
        layer = front if pose[i_thigh] > 25 else behind
        layer.append((hip, knees[side], limb_colour[side], leg_width))
        layer.append((knees[side], ankles[side], limb_colour[side], leg_width))
        shoulder = _xy(out[side] * shoulder_half, shoulder_y)
        i_arm, i_fore = ARM[side]
        elbow = shoulder + upper_arm * _direction(pose[i_arm], out[side])
        wrist = elbow + fore_arm * _direction(pose[i_fore], out[side])
        (front if abs(pose[i_arm]) > 20 else behind).append((shoulder, elbow, limb_colour[side]))
        (front if abs(pose[i_fore]) > 20 else behind).append((elbow, wrist, limb_colour[side]))
    for segment in behind:
        line(*segment)
    hem_y, hem_half = 0.36 * h, hip_half + 0.14 * h
    robe = np.stack(
        [
            _xy(-shoulder_half - width / 2, shoulder_y - width / 2),
            _xy(shoulder_half + width / 2, shoulder_y - width / 2),
            _xy(hem_half, hem_y),
            _xy(-hem_half, hem_y),
        ]
    )
    corners = np.round((robe + origin) * 16).astype(np.int32)
    cv2.fillPoly(image, [corners], look.torso, cv2.LINE_AA, shift=4)
    head = neck + _xy(0.0, -head_r * 0.9)
    cv2.circle(image, pt(head), round(head_r * 16), look.skin, -1, cv2.LINE_AA, shift=4)
    for segment in front:
        line(*segment)
    for side in ("left", "right"):
        foot = ankles[side] + _xy(out[side] * 0.06 * h, 0.0)
        line(ankles[side], foot, look.boots, leg_width)


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
                x_offset += direction * walk_speed * _ramp(tau, duration, 0.4) / cfg.fps
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
        look = Look.draw(cfg, rng)
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
