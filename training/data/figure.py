"""The rendered benchmark's actor and set (training/data/render.py writes the videos).

The stick figure's pose at any moment of an action or of background (idle, walking
sideways), what one video looks like (the scene behind, the figure's robe, boots and skin,
lighting, camera shake, noise: drawn once per video) and how the figure is drawn: a long
robe that hides limbs at rest, the left limbs red and the right ones blue, so that pooled
CNN features can tell left from right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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

# --- Poses -------------------------------------------------------------------------------
# A pose is 10 numbers: limb angles in degrees (0 = hanging down, 90 = straight out to the
# figure's side, 180 = straight up; negative = across the body), then the height the figure
# is lifted off the ground (share of its height) and its sideways offset (share of width).
L_ARM, L_FORE, R_ARM, R_FORE, L_THIGH, L_SHIN, R_THIGH, R_SHIN, LIFT, SHIFT = range(10)
REST = np.array([4, 3, 4, 3, 4, 2, 4, 2, 0, 0], dtype=np.float64)
ARM = {"left": (L_ARM, L_FORE), "right": (R_ARM, R_FORE)}
LEG = {"left": (L_THIGH, L_SHIN), "right": (R_THIGH, R_SHIN)}


def envelope(tau: float, duration: float, ramp: float) -> float:
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
        env = envelope(tau, duration, min(0.7, duration / 4))
        arm, fore = ARM[side]
        pose[arm], pose[fore] = 170.0, 176.0
    elif words[0] == "wave":
        env = envelope(tau, duration, 0.45)
        arm, fore = ARM[side]
        pose[arm] = 135.0
        pose[fore] = 160.0 + 32.0 * math.sin(2 * math.pi * 1.3 * tempo * tau)
    elif words[0] == "kick":
        env = envelope(tau, duration, 0.15)
        kick = _pulse(tau * tempo / 2.0, rise=0.25)
        thigh, shin = LEG[side]
        pose[thigh], pose[shin] = 4 + 72 * kick, 2 + 80 * kick
    elif label == "squat":
        env = envelope(tau, duration, 0.3)
        down = _bump(tau * tempo / 1.8)
        for thigh, shin in LEG.values():
            pose[thigh], pose[shin] = 4 + 62 * down, 2 - 18 * down
        for arm, fore in ARM.values():  # hands on the hips
            pose[arm], pose[fore] = 38.0, -45.0
    elif label == "jump":
        env = envelope(tau, duration, 0.2)
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
        env = envelope(tau, duration, 0.35)
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
        env = envelope(tau, duration, 0.4)
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
    def draw(cls, rng: np.random.Generator, *, width: int, height: int, seconds: float) -> Look:
        """A random look for a `seconds` long video of `width` x `height` pixels."""
        scene, kind = background_image(width, height, rng)
        return cls(
            scene=scene,
            scene_kind=kind,
            figure_height=height * rng.uniform(0.6, 0.68),
            ground=height * rng.uniform(0.86, 0.91),
            centre=width * rng.uniform(0.46, 0.54),
            torso=TORSO_COLOURS[int(rng.integers(len(TORSO_COLOURS)))],
            boots=BOOT_COLOURS[int(rng.integers(len(BOOT_COLOURS)))],
            skin=SKIN_COLOURS[int(rng.integers(len(SKIN_COLOURS)))],
            limb_shade=rng.uniform(0.8, 1.1),
            gain=rng.uniform(0.75, 1.15),
            drift=rng.uniform(0.03, 0.15),
            drift_period=rng.uniform(6, 20),
            light_switch=rng.uniform(0.2, 0.8) * seconds if rng.random() < 0.3 else None,
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
