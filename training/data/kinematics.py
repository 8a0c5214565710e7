"""Forward kinematics of DeepMimic's humanoid: a motion-capture clip → 3D positions of the 13
BODY_JOINTS (runtime/pose_features.py) in metres, world frame y up.

The humanoid (pybullet_data/humanoid/humanoid.urdf, read by `load_skeleton`) is a tree of
links joined at fixed offsets in the parent link's frame: root → chest → neck; root →
{right,left}_hip → knee → ankle; chest → {right,left}_shoulder → elbow → wrist (a fixed
joint). Its local frame faces +x, with +y up and the person's right at +z. DeepMimic loads it
at a global scale of 0.25 (URDF units → metres), which puts the mocap's standing root height
of ~0.85 m right above the feet (checked in tests/training/test_mocap.py).

A clip frame (`humanoid3d_*.txt`, JSON {"Loop": "wrap" | "none", "Frames": [...]}) is 44
numbers: duration (s, 0 on the last frame), root position (3, metres), root rotation
quaternion (w, x, y, z), then per joint a quaternion (w, x, y, z) or, for the revolute knees
and elbows, one angle (radians) about the joint's z axis, in the order JOINT_ORDER. The same
layout is what pybullet's deep_mimic pose interpolator reads.

World position of a joint = parent position + parent rotation · offset; world rotation =
parent rotation · local rotation. BlazePose's keypoints sit at the joint centres, so the
keypoints are the joint positions, except the nose: a point on the front of the head sphere
(the neck link's sphere of radius 0.41 centred 0.7 above the neck joint), at NOSE_OFFSET:
level with the sphere's centre, which puts it 0.3 torso lengths above the shoulders, as on
an adult (the nose at ~0.91 of the body height, shoulders ~0.82, hip joints ~0.53).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.errors import ConfigError
from runtime.pose_features import BODY_JOINTS

URDF_SCALE = 0.25  # URDF units → metres, as DeepMimic loads the humanoid
JOINT_ORDER = (
    "chest",
    "neck",
    "right_hip",
    "right_knee",
    "right_ankle",
    "right_shoulder",
    "right_elbow",
    "left_hip",
    "left_knee",
    "left_ankle",
    "left_shoulder",
    "left_elbow",
)
REVOLUTE = frozenset({"right_knee", "right_elbow", "left_knee", "left_elbow"})
FRAME_SIZE = 1 + 3 + 4 + sum(1 if j in REVOLUTE else 4 for j in JOINT_ORDER)  # 44
# Parent of each link the FK walks, root first (a parent comes before its children).
PARENT = {
    "chest": "root",
    "neck": "chest",
    "right_hip": "root",
    "right_knee": "right_hip",
    "right_ankle": "right_knee",
    "right_shoulder": "chest",
    "right_elbow": "right_shoulder",
    "right_wrist": "right_elbow",
    "left_hip": "root",
    "left_knee": "left_hip",
    "left_ankle": "left_knee",
    "left_shoulder": "chest",
    "left_elbow": "left_shoulder",
    "left_wrist": "left_elbow",
}
NOSE_OFFSET = (0.4, 0.7, 0.0)  # URDF units in the neck link's frame: front of the head
# BODY_JOINTS → the link whose joint centre the keypoint is ("nose" is computed apart).
KEYPOINT_LINK = {name: name for name in BODY_JOINTS if name != "nose"}


@dataclass(frozen=True)
class Skeleton:
    """Joint offsets in metres, each in its parent link's frame."""

    offsets: dict[str, np.ndarray]
    nose: np.ndarray

    def bone(self, link: str) -> float:
        """Length of the bone that ends at `link` (e.g. "right_wrist" → the forearm)."""
        return float(np.linalg.norm(self.offsets[link]))


def load_skeleton(urdf: Path) -> Skeleton:
    """The joint offsets of pybullet's humanoid.urdf, scaled to metres."""
    try:  # the shipped file ends in NUL padding, which XML refuses
        root = ET.fromstring(Path(urdf).read_bytes().replace(b"\x00", b""))
    except (OSError, ET.ParseError) as exc:
        raise ConfigError(f"cannot read the humanoid {urdf}: {exc}") from exc
    offsets: dict[str, np.ndarray] = {}
    for joint in root.iter("joint"):
        parent, child, origin = joint.find("parent"), joint.find("child"), joint.find("origin")
        if parent is None or child is None or origin is None:
            continue
        name = child.get("link", "")
        if PARENT.get(name) == parent.get("link"):
            xyz = [float(v) for v in origin.get("xyz", "0 0 0").split()]
            offsets[name] = np.array(xyz) * URDF_SCALE
    missing = sorted(set(PARENT) - set(offsets))
    if missing:
        raise ConfigError(f"{urdf} lacks the joints {missing} of DeepMimic's humanoid")
    return Skeleton(offsets=offsets, nose=np.array(NOSE_OFFSET) * URDF_SCALE)


@dataclass(frozen=True)
class Clip:
    """One motion-capture clip: F frames at times `times` (s, from 0)."""

    name: str
    loop: bool
    times: np.ndarray  # [F]
    root_pos: np.ndarray  # [F, 3] metres
    root_rot: np.ndarray  # [F, 4] (w, x, y, z)
    joints: dict[str, np.ndarray]  # JOINT_ORDER → [F, 4] quaternion or [F] angle

    @property
    def duration(self) -> float:
        return float(self.times[-1])


def load_clip(path: Path) -> Clip:
    """Parse a DeepMimic `humanoid3d_*.txt` motion file."""
    try:
        data = json.loads(Path(path).read_text())
        frames = np.asarray(data["Frames"], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a DeepMimic motion file: {exc}") from exc
    if frames.ndim != 2 or frames.shape[1] != FRAME_SIZE or len(frames) < 2:
        raise ConfigError(
            f"{path}: frames have shape {list(frames.shape)}, expected [>=2, {FRAME_SIZE}]"
        )
    times = np.concatenate([[0.0], np.cumsum(frames[:-1, 0])])
    joints: dict[str, np.ndarray] = {}
    col = 8
    for name in JOINT_ORDER:
        width = 1 if name in REVOLUTE else 4
        joints[name] = frames[:, col] if width == 1 else frames[:, col : col + 4]
        col += width
    name = Path(path).stem.removeprefix("humanoid3d_")
    return Clip(name, data.get("Loop") == "wrap", times, frames[:, 1:4], frames[:, 4:8], joints)


def quat_matrix(q: np.ndarray) -> np.ndarray:
    """Unit quaternions (w, x, y, z) [..., 4] → rotation matrices [..., 3, 3]."""
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def axis_matrix(angle: np.ndarray, axis: int) -> np.ndarray:
    """Rotations by `angle` [...] radians about the x (0), y (1) or z (2) axis → [..., 3, 3]."""
    c, s = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(c), np.zeros_like(c)
    rows = {
        0: [[one, zero, zero], [zero, c, -s], [zero, s, c]],
        1: [[c, zero, s], [zero, one, zero], [-s, zero, c]],
        2: [[c, -s, zero], [s, c, zero], [zero, zero, one]],
    }[axis]
    return np.stack([np.stack(r, -1) for r in rows], -2)


def local_rotations(clip: Clip) -> dict[str, np.ndarray]:
    """Each joint's rotation in its parent's frame, [F, 3, 3]."""
    out = {}
    for name, value in clip.joints.items():
        out[name] = axis_matrix(value, 2) if name in REVOLUTE else quat_matrix(value)
    return out


def forward_kinematics(
    skeleton: Skeleton,
    root_pos: np.ndarray,
    root_rot: np.ndarray,
    local: dict[str, np.ndarray],
) -> np.ndarray:
    """Root position [F, 3], root rotation [F, 3, 3] and local joint rotations (JOINT_ORDER →
    [F, 3, 3]; a missing joint is unrotated) → BODY_JOINTS positions [F, 13, 3]."""
    pos = {"root": root_pos}
    rot = {"root": root_rot}
    eye = np.broadcast_to(np.eye(3), root_rot.shape)
    for link, parent in PARENT.items():
        offset = skeleton.offsets[link]
        pos[link] = pos[parent] + rot[parent] @ offset
        rot[link] = rot[parent] @ local.get(link, eye)
    nose = pos["neck"] + rot["neck"] @ skeleton.nose
    return np.stack([nose if n == "nose" else pos[KEYPOINT_LINK[n]] for n in BODY_JOINTS], 1)


def clip_joints(skeleton: Skeleton, clip: Clip) -> np.ndarray:
    """A clip's BODY_JOINTS positions at its own frames, [F, 13, 3] metres."""
    return forward_kinematics(
        skeleton, clip.root_pos, quat_matrix(clip.root_rot), local_rotations(clip)
    )


def heading(rotations: np.ndarray) -> np.ndarray:
    """Yaw (radians about +y) of the body's forward axis (+x) under rotations [..., 3, 3]."""
    forward = rotations[..., :, 0]
    return np.arctan2(-forward[..., 2], forward[..., 0])
