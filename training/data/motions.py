"""What a segment of a mocap video can play, each as 3D BODY_JOINTS over time on DeepMimic's
humanoid (training/data/kinematics.py): a motion-capture clip at a playback speed (looped
clips continue cycle after cycle), standing idle, and the rendered benchmark's gestures.

A motion is sampled at segment times t [n] (seconds from the segment's start) and returns
joints [n, 13, 3] in the person frame: y up, the hip midpoint over the origin in every frame,
and the body facing `yaw` (radians, 0 = towards +x, where the camera is) at t = 0.

Gestures (raise arm, wave, clap, squat, the figure's kick and jump) take their timing and
angles from the rendered benchmark's stick figure (training/data/figure.py: `action_pose`,
limb angles from hanging down, 90 = out to the side) and put them on the 3D humanoid: arm
angles turn the arm in the body's frontal plane (as the figure, drawn facing the camera,
shows them), leg angles turn the leg forwards (a figure kick or squat seen from the front is
a real one seen from the side). Clapping brings the hands together in front of the chest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from runtime.pose_features import BODY_JOINTS
from training.data.figure import ARM, LEG, LIFT, action_pose, envelope
from training.data.kinematics import Skeleton, axis_matrix, forward_kinematics

_J = {name: i for i, name in enumerate(BODY_JOINTS)}
ANKLE_HEIGHT = 0.05  # metres: the ankle joint above the ground when the foot is flat
STAND_ROOT = 0.88  # root height with straight legs (0.832 m of leg + the ankle)


def facing(joints: np.ndarray) -> np.ndarray:
    """Heading (radians about +y, 0 = +x) of the body from its hip line; joints [..., 13, 3]."""
    right = joints[..., _J["right_hip"], :] - joints[..., _J["left_hip"], :]
    return np.arctan2(right[..., 0], right[..., 2])


def yaw_matrix(angle: np.ndarray) -> np.ndarray:
    return axis_matrix(np.asarray(angle, dtype=np.float64), 1)


def centre(joints: np.ndarray) -> np.ndarray:
    """Shift each frame so the hip midpoint is over the origin (height kept)."""
    mid = (joints[:, _J["left_hip"]] + joints[:, _J["right_hip"]]) / 2
    mid[:, 1] = 0.0
    return joints - mid[:, None, :]


def turn(joints: np.ndarray, angle: np.ndarray | float) -> np.ndarray:
    """Rotate joints [n, 13, 3] about +y by `angle` (radians, one or one per frame)."""
    rot = np.broadcast_to(yaw_matrix(np.asarray(angle)), (len(joints), 3, 3))
    return np.einsum("nij,nkj->nki", rot, joints)


def blend(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Poses a → b with weights w [n] in [0, 1]: the body shape is mixed with the heading
    removed, and the heading turns the short way, so a body turning does not shrink."""
    ha, hb = facing(a), facing(b)
    la, lb = turn(centre(a), -ha), turn(centre(b), -hb)
    shape = la + w[:, None, None] * (lb - la)
    delta = (hb - ha + math.pi) % (2 * math.pi) - math.pi
    return turn(shape, ha + w * delta)


@dataclass(frozen=True)
class JointClip:
    """A motion-capture clip as BODY_JOINTS positions: F frames at times `times` (s, from 0),
    joints [F, 13, 3] in metres, y up, on DeepMimic's body (kinematics.clip_joints for
    DeepMimic's clips, bvh.body_joints for BVH files)."""

    name: str
    loop: bool
    times: np.ndarray  # [F]
    joints: np.ndarray  # [F, 13, 3]
    # A long recording of one action (a boxing bout, a run of jumps): a segment plays a
    # stretch of it from a random point instead of the whole clip.
    window: bool = False

    @property
    def duration(self) -> float:
        return float(self.times[-1])


@dataclass
class ClipMotion:
    """A mocap clip at `speed`, from `phase` seconds into it; a looped clip keeps going (each
    cycle carried on from where the last one ended), a one-shot clip holds its last frame."""

    clip: JointClip
    speed: float
    yaw: float
    phase: float = 0.0

    def __post_init__(self) -> None:
        self._turn = self.yaw - float(facing(self._sample(np.zeros(1)))[0])

    def __call__(self, t: np.ndarray) -> np.ndarray:
        return turn(centre(self._sample(np.asarray(t, dtype=np.float64))), self._turn)

    def _sample(self, t: np.ndarray) -> np.ndarray:
        """The clip's joints at segment times t, as recorded (not centred or turned)."""
        times, joints = self.clip.times, self.clip.joints
        clip_t = self.phase + t * self.speed
        if self.clip.loop:
            cycles, within = np.divmod(clip_t, self.clip.duration)
        else:
            cycles, within = np.zeros_like(clip_t), np.clip(clip_t, 0.0, self.clip.duration)
        k = np.clip(np.searchsorted(times, within, side="right") - 1, 0, len(times) - 2)
        u = ((within - times[k]) / (times[k + 1] - times[k]))[:, None, None]
        out = joints[k] * (1 - u) + joints[k + 1] * u
        # Cycle c is cycle 0 turned c times by the clip's heading change about the first
        # frame's hip midpoint, each turn followed by the clip's travel.
        start, end = joints[0], joints[-1]
        turn_per_cycle = float(facing(end) - facing(start))
        flat = np.array([1.0, 0.0, 1.0])
        hip0 = (start[_J["left_hip"]] + start[_J["right_hip"]]) / 2 * flat
        hip1 = (end[_J["left_hip"]] + end[_J["right_hip"]]) / 2 * flat
        for c in np.unique(cycles).astype(int):
            rows = cycles == c
            moved = out[rows] - hip0
            for _ in range(c):
                moved = turn(moved, turn_per_cycle) + (hip1 - hip0)
            out[rows] = moved + hip0
        return out


@dataclass(frozen=True)
class Later:
    """`motion` from `offset` seconds on: the second of two segments that one recording plays
    back to back (a fall, then getting up), so the body carries on where the first ended."""

    motion: ClipMotion
    offset: float

    def __call__(self, t: np.ndarray) -> np.ndarray:
        return self.motion(np.asarray(t, dtype=np.float64) + self.offset)


@dataclass
class Idle:
    """Standing: a neutral or slightly varied stance (arms hanging, bent, hands together),
    swaying and looking around a little."""

    skeleton: Skeleton
    yaw: float
    rng: np.random.Generator

    def __post_init__(self) -> None:
        r = self.rng
        self.arm = {s: r.uniform(2, 22) for s in ("left", "right")}  # abduction, degrees
        self.flex = {s: r.uniform(-10, 35) for s in ("left", "right")}  # shoulder forward
        self.elbow = {s: r.uniform(0, 100) if r.random() < 0.5 else r.uniform(0, 25) for s in ARM}
        self.knee = {s: r.uniform(0, 12) for s in LEG}
        self.lean = r.uniform(-6, 6)
        self.sway = (r.uniform(0.15, 0.45), r.uniform(0.5, 3.0), r.uniform(0, 2 * math.pi))
        self.look = (r.uniform(0.05, 0.25), r.uniform(0, 25), r.uniform(0, 2 * math.pi))

    def rotations(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Root position [n, 3], root rotation [n, 3, 3], local rotations of a standing body."""
        n = len(t)
        freq, amp, phase = self.sway
        sway = np.radians(amp) * np.sin(2 * math.pi * freq * t + phase)
        root_rot = axis_matrix(sway, 0) @ axis_matrix(np.full(n, math.radians(self.lean)), 2)
        root_pos = np.zeros((n, 3))
        root_pos[:, 1] = STAND_ROOT
        freq, amp, phase = self.look
        local = {
            "neck": axis_matrix(np.radians(amp) * np.sin(2 * math.pi * freq * t + phase), 1),
            "chest": axis_matrix(-0.5 * sway, 0),
        }
        for side, sign in (("left", 1.0), ("right", -1.0)):
            abd = np.full(n, sign * math.radians(self.arm[side]))
            fwd = np.full(n, math.radians(self.flex[side]))
            local[f"{side}_shoulder"] = axis_matrix(fwd, 2) @ axis_matrix(abd, 0)
            local[f"{side}_elbow"] = axis_matrix(np.full(n, math.radians(self.elbow[side])), 2)
            bend = np.full(n, math.radians(self.knee[side]))
            local[f"{side}_hip"] = axis_matrix(bend / 2, 2)
            local[f"{side}_knee"] = axis_matrix(-bend, 2)
        return root_pos, root_rot, local

    def __call__(self, t: np.ndarray) -> np.ndarray:
        joints = forward_kinematics(self.skeleton, *self.rotations(np.asarray(t, float)))
        return turn(centre(_on_ground(joints)), self.yaw)


@dataclass
class Gesture:
    """One of the rendered benchmark's gestures (figure.ACTIONS label, or "clap") lasting
    `duration` seconds at `tempo`, on top of a standing body."""

    skeleton: Skeleton
    label: str
    duration: float
    tempo: float
    yaw: float
    rng: np.random.Generator

    def __post_init__(self) -> None:
        self.idle = Idle(self.skeleton, 0.0, self.rng)

    def __call__(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        root_pos, root_rot, local = self.idle.rotations(t)
        figure_label = "clap hands" if self.label == "clap" else self.label
        poses = np.stack(
            [action_pose(figure_label, float(x), self.duration, self.tempo) for x in t]
        )
        words = figure_label.split()
        arms = [s for s in ARM if s in words] or (
            list(ARM) if words[0] in ("squat", "jump") else []
        )
        for side in arms:
            sign = 1.0 if side == "left" else -1.0
            upper, fore = np.radians(poses[:, ARM[side][0]]), np.radians(poses[:, ARM[side][1]])
            local[f"{side}_shoulder"] = axis_matrix(sign * upper, 0)
            local[f"{side}_elbow"] = axis_matrix(sign * (fore - upper), 0)
        if words[0] in ("kick", "squat", "jump"):
            for side in LEG:
                thigh, shin = np.radians(poses[:, LEG[side][0]]), np.radians(poses[:, LEG[side][1]])
                local[f"{side}_hip"] = axis_matrix(thigh, 2)
                local[f"{side}_knee"] = axis_matrix(shin - thigh, 2)
            if words[0] == "squat":  # the chest leans forward as the hips go back
                depth = np.radians(poses[:, LEG["left"][0]]) - math.radians(4)
                local["chest"] = axis_matrix(-0.6 * depth, 2)
        joints = _on_ground(forward_kinematics(self.skeleton, root_pos, root_rot, local))
        joints[:, :, 1] += 1.7 * poses[:, LIFT, None]  # LIFT is a share of the body height
        if self.label == "clap":
            joints = self._clap(joints, t)
        return turn(centre(joints), self.yaw)

    def _clap(self, joints: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Hands meet in front of the chest 1.6 times a second (the figure's clap rate)."""
        env = np.array([envelope(float(x), self.duration, 0.35) for x in t])
        closed = (1 + np.cos(2 * math.pi * 1.6 * self.tempo * t)) / 2
        shoulders = (joints[:, _J["left_shoulder"]] + joints[:, _J["right_shoulder"]]) / 2
        fore = self.skeleton.bone("left_wrist")
        upper = self.skeleton.bone("left_elbow")
        for side, sign in (("left", -1.0), ("right", 1.0)):
            shoulder = joints[:, _J[f"{side}_shoulder"]]
            hand = shoulders + np.array([0.32, -0.2, 0.0])
            hand[:, 2] += sign * (0.035 + 0.2 * (1 - closed))
            # Elbow: below and outside the shoulder-hand line, at the bone lengths.
            elbow = shoulder + np.array([0.12, -upper * 0.9, sign * 0.06])
            elbow = shoulder + upper * _unit(elbow - shoulder)
            wrist = elbow + fore * _unit(hand - elbow)
            for name, target in (("elbow", elbow), ("wrist", wrist)):
                j = _J[f"{side}_{name}"]
                joints[:, j] += env[:, None] * (target - joints[:, j])
        return joints


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _on_ground(joints: np.ndarray) -> np.ndarray:
    """Lift or lower each frame so the lower ankle is at ANKLE_HEIGHT."""
    low = joints[:, [_J["left_ankle"], _J["right_ankle"]], 1].min(axis=1)
    joints[:, :, 1] += (ANKLE_HEIGHT - low)[:, None]
    return joints
