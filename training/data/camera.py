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

Framing (CameraRanges.draw_framing, training only): the picture the estimator sees may be
cut by an edge through the body — its bottom at the waist (the legs out of frame, as a
webcam on a desk shows a person), a side through the shoulder or the hip, or its top
through the head — so those joints are out of the picture: unsure and noisier, as above.
A crop is set in metres of the person frame at the aim point (the body stays centred
there: clips are centred on the hip midpoint), turned into pixels through the camera.

The split's camera ranges are set in mocap.py (train and test draw from disjoint ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

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
    # The part of the image the estimator sees (x0, y0, x1, y1 pixels); None: all of it.
    crop: tuple[float, float, float, float] | None = None

    @property
    def focal(self) -> float:
        return self.height * self.distance / self.view_height

    @property
    def box(self) -> tuple[float, float, float, float]:
        """What the estimator sees, in image pixels: the crop within the image."""
        x0, y0, x1, y1 = self.crop or (0.0, 0.0, float(self.width), float(self.height))
        return max(x0, 0.0), max(y0, 0.0), min(x1, float(self.width)), min(y1, float(self.height))

    def pixel(self, height: float, lateral: float = 0.0) -> tuple[float, float]:
        """Where the point `height` metres above the ground and `lateral` metres to the
        image's right of the body's centre line lands (x, y pixels, before mirroring)."""
        p = math.radians(self.pitch)
        forward = -np.array([math.cos(p), math.sin(p), 0.0])
        right = np.cross(forward, [0.0, 1.0, 0.0])
        right /= np.linalg.norm(right)
        points, _ = self.project((np.array([0.0, height, 0.0]) + lateral * right)[None, None])
        return float(points[0, 0, 0]), float(points[0, 0, 1])

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
        x0, y0, x1, y1 = self.box
        outside = (
            (points[..., 0] < x0)
            | (points[..., 0] > x1)
            | (points[..., 1] < y0)
            | (points[..., 1] > y1)
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
    # Framing (draw_framing): chances that an edge of the picture cuts the body, and where.
    waist_cut: float = 0.0  # the bottom edge at `waist_height` metres above the ground
    waist_height: tuple[float, float] = (0.7, 1.15)  # knees .. waist (hips ~0.9)
    side_cut: float = 0.0  # a side edge at `side_offset` metres from the body's centre line
    side_offset: tuple[float, float] = (-0.05, 0.35)
    top_cut: float = 0.0  # the top edge at `top_height` metres: the head out of the picture
    top_height: tuple[float, float] = (1.3, 1.55)
    # Whole-person dropouts: per row, the chance (drawn per video from this range) that the
    # estimator loses the person for a run of `dropout_rows` rows (present < 0.5: the
    # "nobody" row), as real detection flickers in mid-action.
    person_dropout: tuple[float, float] = (0.0, 0.0)
    dropout_rows: tuple[int, int] = (1, 3)

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

    def draw_framing(self, camera: Camera, rng: np.random.Generator) -> Camera:
        """The camera with its picture cut by the edges this range's chances draw."""
        x0, y0, x1, y1 = 0.0, 0.0, float(camera.width), float(camera.height)
        if rng.random() < self.waist_cut:
            y1 = min(y1, camera.pixel(float(rng.uniform(*self.waist_height)))[1])
        if rng.random() < self.side_cut:
            side = 1.0 if rng.random() < 0.5 else -1.0
            x = camera.pixel(camera.aim_height, side * float(rng.uniform(*self.side_offset)))[0]
            x0, x1 = (x0, min(x1, x)) if side > 0 else (max(x0, x), x1)
        if rng.random() < self.top_cut:
            y0 = max(y0, camera.pixel(float(rng.uniform(*self.top_height)))[1])
        if (x0, y0, x1, y1) == (0.0, 0.0, float(camera.width), float(camera.height)):
            return camera
        return replace(camera, crop=(x0, y0, x1, y1))

    def draw_person_dropouts(self, rows: int, rng: np.random.Generator) -> np.ndarray:
        """bool [rows]: the rows where the estimator loses the person."""
        lost = np.zeros(rows, dtype=bool)
        chance = float(rng.uniform(*self.person_dropout))
        if chance <= 0:
            return lost
        low, high = self.dropout_rows
        starts, lengths = rng.random(rows) < chance, rng.integers(low, high + 1, rows)
        i = 0
        while i < rows:  # runs apart: a run, then at least one row with the person
            if starts[i]:
                lost[i : i + int(lengths[i])] = True
                i += int(lengths[i])
            i += 1
        return lost

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
