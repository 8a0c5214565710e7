"""BVH motion capture → the 13 BODY_JOINTS in metres on DeepMimic's body proportions.

A BVH file is a joint hierarchy (each joint an OFFSET from its parent and the CHANNELS its
frames animate: the root's position, then Euler angles in degrees in the order listed) and a
MOTION block (one line of channel values per frame). Forward kinematics is the same rule as
kinematics.py's: world position = parent position + parent rotation · offset, world rotation
= parent rotation · local rotation, where a joint's local rotation is the product of its
channel rotations in the order they are listed (BVH's convention).

The keypoints are read at joint centres, whichever naming the rig uses (`KEYPOINT_NAMES`:
CMU's `LeftUpLeg`/`LeftLeg`/`LeftFoot`/`LeftArm`/`LeftForeArm`/`LeftHand` or the
`LeftHip`/`LeftKnee`/`LeftAnkle`/`LeftShoulder`/`LeftElbow`/`LeftWrist` style); the nose is a
point in front of the head (half-way up the head's end site, and as far forward as the
DeepMimic nose is: kinematics.NOSE_OFFSET) carried by the head's rotation. Each clip is then
scaled so its standing leg (hip → knee → ankle in the rest pose) is as long as DeepMimic's,
turned so that its forward is +x (DeepMimic's) and lifted so its lowest ankle in the clip is
at the standing ankle height: its rows then look like the other clips' to the same cameras.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.errors import ConfigError
from runtime.pose_features import BODY_JOINTS
from training.data.kinematics import Skeleton, axis_matrix
from training.data.motions import ANKLE_HEIGHT

# BODY_JOINTS → the joint names a rig may use for it, first found wins ("nose" is computed).
KEYPOINT_NAMES: dict[str, tuple[str, ...]] = {
    "left_shoulder": ("LeftArm", "LeftShoulder", "LeftUpArm"),
    "right_shoulder": ("RightArm", "RightShoulder", "RightUpArm"),
    "left_elbow": ("LeftForeArm", "LeftElbow", "LeftLowArm"),
    "right_elbow": ("RightForeArm", "RightElbow", "RightLowArm"),
    "left_wrist": ("LeftHand", "LeftWrist"),
    "right_wrist": ("RightHand", "RightWrist"),
    "left_hip": ("LeftUpLeg", "LeftHip", "LeftThigh"),
    "right_hip": ("RightUpLeg", "RightHip", "RightThigh"),
    "left_knee": ("LeftLeg", "LeftKnee", "LeftShin"),
    "right_knee": ("RightLeg", "RightKnee", "RightShin"),
    "left_ankle": ("LeftFoot", "LeftAnkle"),
    "right_ankle": ("RightFoot", "RightAnkle"),
}
HEAD_NAMES = ("Head",)
_AXIS = {"X": 0, "Y": 1, "Z": 2}


@dataclass(frozen=True)
class Rig:
    """The hierarchy: joints in file order (a parent before its children)."""

    names: list[str]
    parents: list[int]  # -1 for the root
    offsets: np.ndarray  # [J, 3] in the file's units
    channels: list[list[str]]  # per joint, e.g. ["Xposition", ..., "Zrotation", ...]
    end_sites: dict[int, np.ndarray]  # joint → its End Site offset (first one)


@dataclass(frozen=True)
class Bvh:
    rig: Rig
    frame_time: float
    motion: np.ndarray  # [F, channels]


def parse_bvh(text: str, source: str = "BVH") -> Bvh:
    """Read a BVH file's text; ConfigError says what is wrong with a bad one."""
    tokens = text.split()
    try:
        start = tokens.index("HIERARCHY")
        split = tokens.index("MOTION")
    except ValueError as exc:
        raise ConfigError(f"{source} is not a BVH file (no HIERARCHY / MOTION)") from exc
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    end_sites: dict[int, np.ndarray] = {}
    stack: list[int] = []
    pending: int | None = None  # the joint whose "{" comes next (-2: an End Site)
    i = start + 1
    try:
        while i < split:
            tok = tokens[i]
            if tok in ("ROOT", "JOINT"):
                names.append(tokens[i + 1])
                parents.append(stack[-1] if stack else -1)
                offsets.append([0.0, 0.0, 0.0])
                channels.append([])
                pending, i = len(names) - 1, i + 2
            elif tok == "End":
                pending, i = -2, i + 2
            elif tok == "{":
                stack.append(pending if pending is not None else -3)
                pending, i = None, i + 1
            elif tok == "}":
                stack.pop()
                i += 1
            elif tok == "OFFSET":
                value = [float(v) for v in tokens[i + 1 : i + 4]]
                if stack[-1] == -2:
                    end_sites.setdefault(stack[-2], np.array(value))
                else:
                    offsets[stack[-1]] = value
                i += 4
            elif tok == "CHANNELS":
                n = int(tokens[i + 1])
                channels[stack[-1]] = tokens[i + 2 : i + 2 + n]
                i += 2 + n
            else:
                raise ConfigError(f"{source}: unexpected {tok!r} in the HIERARCHY")
        if tokens[split + 1] != "Frames:" or tokens[split + 3 : split + 5] != ["Frame", "Time:"]:
            raise ConfigError(f"{source}: MOTION must start with Frames: and Frame Time:")
        frames, frame_time = int(tokens[split + 2]), float(tokens[split + 5])
        width = sum(len(c) for c in channels)
        values = np.asarray(tokens[split + 6 :], dtype=np.float64)
    except (IndexError, ValueError) as exc:
        raise ConfigError(f"{source}: malformed BVH ({exc})") from exc
    # Exporters disagree on whether `Frames:` counts a trailing rest frame: whole frames
    # beyond the count are allowed (and dropped), missing ones are not.
    if (
        not names
        or frames < 2
        or frame_time <= 0
        or values.size % max(width, 1)
        or (values.size < frames * width)
    ):
        raise ConfigError(
            f"{source}: {values.size} motion values for {frames} frames of {width} channels "
            f"(frame time {frame_time})"
        )
    rig = Rig(names, parents, np.asarray(offsets), channels, end_sites)
    return Bvh(rig, frame_time, values[: frames * width].reshape(frames, width))


def load_bvh(path: Path) -> Bvh:
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    return parse_bvh(text, str(path))


def world_joints(bvh: Bvh) -> tuple[np.ndarray, np.ndarray]:
    """Every joint's world position [F, J, 3] and rotation [F, J, 3, 3], file units."""
    rig, motion = bvh.rig, bvh.motion
    frames, count = len(motion), len(rig.names)
    pos = np.zeros((frames, count, 3))
    rot = np.zeros((frames, count, 3, 3))
    col = 0
    for j, parent in enumerate(rig.parents):
        local = np.broadcast_to(np.eye(3), (frames, 3, 3)).copy()
        move = np.zeros((frames, 3))
        for name in rig.channels[j]:
            axis = _AXIS.get(name[:1].upper())
            if axis is None or name[1:] not in ("position", "rotation"):
                raise ConfigError(f"unknown BVH channel {name!r} on {rig.names[j]}")
            if name.endswith("position"):
                move[:, axis] = motion[:, col]
            else:
                local = local @ axis_matrix(np.radians(motion[:, col]), axis)
            col += 1
        if parent < 0:
            pos[:, j] = rig.offsets[j] + move
            rot[:, j] = local
        else:
            pos[:, j] = pos[:, parent] + np.einsum("fij,j->fi", rot[:, parent], rig.offsets[j])
            pos[:, j] += move
            rot[:, j] = rot[:, parent] @ local
    return pos, rot


def _index(rig: Rig, candidates: tuple[str, ...], what: str) -> int:
    for name in candidates:
        if name in rig.names:
            return rig.names.index(name)
    raise ConfigError(f"the BVH rig has no joint for {what} (looked for {list(candidates)})")


def _rest_positions(rig: Rig) -> np.ndarray:
    pos = np.zeros((len(rig.names), 3))
    for j, parent in enumerate(rig.parents):
        pos[j] = rig.offsets[j] + (pos[parent] if parent >= 0 else 0.0)
    return pos


def body_joints(bvh: Bvh, skeleton: Skeleton) -> np.ndarray:
    """The clip's BODY_JOINTS [F, 13, 3] in metres, y up, scaled to DeepMimic's leg, facing
    +x in its first frame, its lowest ankle at the standing ankle height."""
    rig = bvh.rig
    index = {k: _index(rig, v, k) for k, v in KEYPOINT_NAMES.items()}
    head = _index(rig, HEAD_NAMES, "the head")
    rest = _rest_positions(rig)
    leg = np.linalg.norm(rest[index["left_knee"]] - rest[index["left_hip"]])
    leg += np.linalg.norm(rest[index["left_ankle"]] - rest[index["left_knee"]])
    target = skeleton.bone("left_knee") + skeleton.bone("left_ankle")
    if leg <= 0:
        raise ConfigError("the BVH rig's leg has no length")
    scale = target / leg
    # The nose in the rest pose (no rotation: the rest frame is the world frame): up the
    # head half its end site, forward (left hip → right hip × up) as DeepMimic's nose.
    top = rig.end_sites.get(head, np.array([0.0, 0.15 / scale, 0.0]))
    across = rest[index["right_hip"]] - rest[index["left_hip"]]
    forward = np.cross(np.array([0.0, 1.0, 0.0]), across)  # right × up → forward, y up
    forward /= max(np.linalg.norm(forward), 1e-9)
    nose_rest = 0.5 * top + forward * (skeleton.nose[0] / scale)
    pos, rot = world_joints(bvh)
    out = np.zeros((len(pos), len(BODY_JOINTS), 3))
    for k, name in enumerate(BODY_JOINTS):
        if name == "nose":
            out[:, k] = pos[:, head] + np.einsum("fij,j->fi", rot[:, head], nose_rest)
        else:
            out[:, k] = pos[:, index[name]]
    out *= scale
    # Turn so the first frame faces +x (yaw of `forward` in the rest frame, under the root).
    root_forward = np.einsum("ij,j->i", rot[0, 0], forward)
    yaw = axis_matrix(np.arctan2(root_forward[2], root_forward[0]), 1)
    out = np.einsum("ij,fkj->fki", yaw, out)
    ankles = out[:, [BODY_JOINTS.index("left_ankle"), BODY_JOINTS.index("right_ankle")], 1]
    out[:, :, 1] += ANKLE_HEIGHT - float(np.percentile(ankles.min(axis=1), 2))
    return out
