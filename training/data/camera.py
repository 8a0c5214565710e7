"""A random camera for the mocap dataset: 3D joints → what a pose estimator would report of
them in a camera frame (image points, visibility, person-present score).

The body is given in a person frame whose origin is under the hip midpoint, y up, facing
`heading` (0 = facing the camera). The camera sits in front at `distance` metres from an aim
point `aim_height` metres above the ground, raised by `pitch` degrees (positive: looking
down) and does not move: a webcam on a desk or a phone on a shelf. Its focal length makes the
image height cover `view_height` metres at the aim point, so a close camera with a small view
cuts the legs off (as a laptop webcam does), and a far one shows the whole body with little
perspective.

What the estimator reports is modelled after BlazePose: every joint has a point even when
hidden; visibility is high for joints in view, lower for joints behind the body (further from
the camera than the torso by more than OCCLUSION_DEPTH), and low for joints outside the image,
whose points are noisier too. Keypoint noise is Gaussian, a share of the torso's size in
pixels, plus now and then a joint lost for a frame (low visibility, a large error). A mirrored
camera flips x and swaps left and right (MIRROR_INDEX), as a selfie preview does.

The split's camera ranges are set in mocap.py (train and test draw from disjoint ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from runtime.pose_features import BODY_JOINTS, MIRROR_INDEX

IMAGE_SIZES = ((640, 480), (1280, 720), (480, 640), (720, 1280), (640, 640))
OCCLUSION_DEPTH = 0.15  # metres behind the torso centre before a joint counts as hidden
TORSO_METRES = 0.5  # keypoint noise is a share of this length, in pixels
_TORSO = [
    BODY_JOINTS.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")
]


@dataclass(frozen=True)
class Camera:
    pitch: float  # degrees; positive: above the aim point, looking down
    distance: float  # metres from the aim point
    aim_height: float  # metres above the ground
    view_height: float  # metres the image height covers at the aim point
    width: int  # pixels
    height: int
    mirror: bool
    noise: float  # keypoint noise std, share of TORSO_METRES in pixels
    dropout: float  # chance per joint and frame that the estimator loses it

    @property
    def focal(self) -> float:
        return self.height * self.distance / self.view_height

    def project(self, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Joints [T, J, 3] in the person frame (camera in front, +x towards it) →
        (image points [T, J, 2] in pixels, depth [T, J] in metres along the optical axis)."""
        p = math.radians(self.pitch)
        aim = np.array([0.0, self.aim_height, 0.0])
        centre = aim + self.distance * np.array([math.cos(p), math.sin(p), 0.0])
        forward = (aim - centre) / self.distance
        right = np.cross(forward, [0.0, 1.0, 0.0])
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        rel = joints - centre
        x, y, z = rel @ right, rel @ down, rel @ forward
        z = np.maximum(z, 0.05)  # a joint at the lens stays finite
        points = np.stack(
            [self.width / 2 + self.focal * x / z, self.height / 2 + self.focal * y / z], -1
        )
        return points, z

    def observe(
        self, joints: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Joints [T, J, 3] → (noisy image points [T, J, 2], visibility [T, J]) as an
        estimator would report them, mirrored when the camera is."""
        points, depth = self.project(joints)
        t, j = depth.shape
        torso_depth = depth[:, _TORSO].mean(axis=1, keepdims=True)
        hidden = depth > torso_depth + OCCLUSION_DEPTH
        outside = (
            (points[..., 0] < 0)
            | (points[..., 0] > self.width)
            | (points[..., 1] < 0)
            | (points[..., 1] > self.height)
        )
        vis = rng.uniform(0.88, 1.0, (t, j))
        vis = np.where(hidden, rng.uniform(0.45, 0.85, (t, j)), vis)
        vis = np.where(outside, rng.uniform(0.0, 0.3, (t, j)), vis)
        lost = rng.random((t, j)) < self.dropout
        vis = np.where(lost, rng.uniform(0.0, 0.25, (t, j)), vis)

        sigma = self.noise * self.focal * TORSO_METRES / np.maximum(torso_depth, 0.5)  # [T, 1]
        scale = np.where(outside | hidden, 2.5, 1.0) * np.where(lost, 6.0, 1.0)
        points = points + rng.normal(size=points.shape) * (sigma * scale)[..., None]
        if self.mirror:
            points = points[:, list(MIRROR_INDEX)]
            points[..., 0] = self.width - points[..., 0]
            vis = vis[:, list(MIRROR_INDEX)]
        return points, vis


@dataclass(frozen=True)
class CameraRanges:
    """Where a split's cameras and playback come from. Yaw is the person's heading relative
    to the camera at the start of each segment (0 = facing it), drawn from `yaw_sectors`."""

    yaw_sectors: tuple[tuple[float, float], ...]  # degrees, each (low, high)
    pitch: tuple[float, float]
    speed: tuple[tuple[float, float], ...]  # playback speed ranges
    distance: tuple[float, float] = (1.3, 5.0)
    view_height: tuple[float, float] = (1.1, 2.8)
    aim_height: tuple[float, float] = (0.7, 1.3)
    noise: tuple[float, float] = (0.01, 0.05)
    dropout: tuple[float, float] = (0.0, 0.02)
    mirror: float = 0.5  # chance a video's camera is mirrored

    def draw_camera(self, rng: np.random.Generator) -> Camera:
        width, height = IMAGE_SIZES[int(rng.integers(len(IMAGE_SIZES)))]
        return Camera(
            pitch=float(rng.uniform(*self.pitch)),
            distance=float(rng.uniform(*self.distance)),
            aim_height=float(rng.uniform(*self.aim_height)),
            view_height=float(rng.uniform(*self.view_height)),
            width=width,
            height=height,
            mirror=bool(rng.random() < self.mirror),
            noise=float(rng.uniform(*self.noise)),
            dropout=float(rng.uniform(*self.dropout)),
        )

    def draw_yaw(self, rng: np.random.Generator) -> float:
        """Radians, uniform over the union of the sectors."""
        return math.radians(_uniform_union(self.yaw_sectors, rng))

    def draw_speed(self, rng: np.random.Generator) -> float:
        return _uniform_union(self.speed, rng)


def _uniform_union(ranges: tuple[tuple[float, float], ...], rng: np.random.Generator) -> float:
    widths = np.array([hi - lo for lo, hi in ranges], dtype=np.float64)
    pick = int(rng.choice(len(ranges), p=widths / widths.sum()))
    lo, hi = ranges[pick]
    return float(rng.uniform(lo, hi))
