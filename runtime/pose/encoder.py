"""PoseFrameEncoder: camera frames → pose feature rows (`kind: "pose-blazepose"`).

The same interface as runtime.encoders.OnnxFrameEncoder — `encode(frames)`, `feature_dim`,
`name`, `describe()`, and for the service's micro-batcher `preprocess.apply` →
`check_pixels` / `encode_pixels` — so extraction, `/classify` and streams take it as they
take an image encoder.

Its "pixels" are the camera frame itself (PoseFrames: only a frame whose longer side is over
MAX_SIDE is scaled down, to bound the memory a frame holds): the detector letterboxes it to
224, and the landmark model's 256 crop is cut from it around the ROI (runtime/pose/roi.py),
as MediaPipe's own graph does. Until issue 26 the whole frame was first letterboxed to 512,
which cost a third of a tracked frame's time on a 1768×994 frame and gave the landmark
model a person smaller than the camera saw. Frames of different sizes go as a list; the
features do not depend on the frame's size — they are centred on the hips and divided by
the torso length. `encode(frames)` is exactly `encode_pixels(preprocess.apply(frames))`,
the serving path. The description keeps `{"resize": "letterbox", "size": 512}` (packages
and datasets recorded it): `size` is now the fewest pixels on the frame's longer side that
a frame decoded at reduced size keeps before the detector has found anyone (what the
letterbox gave), service/encoding.py `decode_frame`.

Two ways to run it:
  stateless  `encode` / `encode_pixels`: every frame runs the detector, then the landmark
             model on the ROI it gives. Nothing to keep between frames, so a stream resumes
             on any replica exactly; this is what `gad data extract` and the contract's
             stateless rows use. Costs detector + landmarks per frame (one core, graphs
             alone: 11.5 + 9 ms measured on a quiet box; the detector is the larger part).
  tracked    `encode_tracked(pixels, rois)` (or `encode_pixels_tracked(pixels, rois)`,
             the same with the ROIs as a float array [N, 4], NaN rows for none: what the
             service's micro-batcher carries): a frame with the previous frame's ROI skips
             the detector (the landmark model's alignment points 33/34 give the next ROI,
             as the detector's keypoints would), and falls back to detection when the ROI
             is unusable (Roi.usable) or the pose flag says the person was lost. The
             per-stream state is one ROI (four floats), kept by the stream's session
             (service/session.py); a stream without one (new, resumed on another replica,
             or after a frame with nobody) detects on its next frame. Costs the landmark
             model alone on most frames. Tracked rows are the stateless rows' estimates
             from another crop: close, not equal (tests/runtime/test_pose_tracking.py), so
             a model should be fed one way; `/classify` tracks too (runtime/pose/track.py),
             so a clip and the same clip streamed give the same rows.

`detected` and `tracked` count, since the encoder was opened, the frames that ran the
detector and the frames that ran the landmark model on a tracked ROI (a frame whose
tracked pose flag drops is both).

A frame with nobody in it is a valid frame: no detection, or a pose flag under 0.5, gives
the zero row of runtime/pose_features.py with its `present` value (the landmark model's
pose flag, or the detector's best score when it found nobody).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from runtime.errors import GADError
from runtime.manifest import POSE_KIND
from runtime.pose.detector import PoseDetector
from runtime.pose.landmarks import LandmarkModel, Landmarks
from runtime.pose.roi import Roi, crop, roi_from_keypoints, rois_from_array, rois_to_array
from runtime.pose.view import view_values
from runtime.pose_features import (
    BLAZEPOSE_INDEX,
    FEATURE_DIM,
    NUM_JOINTS,
    PRESENT_THRESHOLD,
    pose_features_batch,
)
from runtime.preprocess import MAX_ASPECT, FrameError, check_frames
from runtime.sessions import DEFAULT_PROVIDERS, open_session

log = logging.getLogger(__name__)

# The encoder specs (`gad data extract --encoder`) that name this encoder.
POSE_SPECS = ("blazepose", POSE_KIND)
DETECTOR_FILE = "pose_detection.onnx"
LANDMARK_FILE = "pose_landmark.onnx"
DEFAULT_INPUT_SIZE = 512
# A longer frame is scaled down to this (INTER_AREA) before the encoder keeps it: a 4K
# camera's person is found by a 224 detector input and cropped to 256 either way.
MAX_SIDE = 1920

Frames = np.ndarray | Sequence[np.ndarray]  # [N, H, W, 3], or N frames of their own sizes


def is_pose_spec(spec: str) -> bool:
    """A body-pose encoder spec (onnxruntime only), as opposed to an image encoder's."""
    return spec in POSE_SPECS


@dataclass(frozen=True)
class PoseFrames:
    """A pose encoder's preprocessing: uint8 RGB frames → the same frames (a view, not a
    copy), scaled down (aspect kept, INTER_AREA) only where the longer side is over
    MAX_SIDE. `size` (512) is the fewest pixels on the longer side a reduced decode keeps
    (module docstring)."""

    size: int = DEFAULT_INPUT_SIZE

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 64:
            raise GADError(f"letterbox size must be an integer >= 64, got {self.size!r}")

    def apply(self, frames: np.ndarray) -> np.ndarray:
        frames = check_frames(frames)
        height, width = frames.shape[1:3]
        if max(height, width) > MAX_ASPECT * min(height, width):
            raise FrameError(
                f"frames of {width}×{height} pixels are over the {MAX_ASPECT}:1 aspect ratio "
                "a pose encoder takes"
            )
        if max(height, width) <= MAX_SIDE:
            return frames
        return np.stack([fit(frame, MAX_SIDE) for frame in frames])

    def to_dict(self) -> dict[str, Any]:
        return {"resize": "letterbox", "size": self.size, "color": "RGB", "layout": "NHWC"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PoseFrames:
        if not isinstance(data, dict) or data.get("resize") != "letterbox":
            raise GADError(f"a pose encoder's preprocess must be a letterbox, got {data!r}")
        return cls(int(data["size"]))


FrameLetterbox = PoseFrames  # the name it had while it letterboxed


def fit(frame: np.ndarray, longest: int) -> np.ndarray:
    """One frame scaled down (INTER_AREA, aspect kept) so its longer side is `longest`."""
    height, width = frame.shape[:2]
    scale = longest / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def frame_list(frames: Frames) -> list[np.ndarray]:
    """Frames [N, H, W, 3] (or one [H, W, 3]) or a sequence of [H, W, 3] of any sizes → a
    list of checked frames."""
    if isinstance(frames, np.ndarray):
        return list(check_frames(frames))
    return [check_frames(frame)[0] for frame in frames]


def pose_description(*, spec: str = POSE_KIND, size: int = DEFAULT_INPUT_SIZE) -> dict[str, Any]:
    """What data_info.json and model manifests record of a pose encoder: exactly
    `PoseFrameEncoder.describe()`, so a dataset made without frames (motion capture) names
    the encoder the same way extraction does. A package's encoder section adds `file` (the
    landmark graph) and `files` (the detector too)."""
    return {
        "kind": POSE_KIND,
        "spec": spec,
        "name": POSE_KIND,
        "feature_dim": FEATURE_DIM,
        "preprocess": PoseFrames(size).to_dict(),
        "detector": DETECTOR_FILE,
        "landmarks": LANDMARK_FILE,
    }


@dataclass
class PoseFrameEncoder:
    spec: str
    name: str
    feature_dim: int
    preprocess: PoseFrames
    providers: tuple[str, ...]
    detector: PoseDetector = field(repr=False)
    landmarks: LandmarkModel = field(repr=False)
    description: dict[str, Any] = field(default_factory=dict, repr=False)
    skipped: dict[str, str] = field(default_factory=dict)
    detected: int = 0  # frames that ran the detector
    tracked: int = 0  # frames that ran the landmarks on the previous frame's ROI

    @classmethod
    def open(
        cls,
        folder: Path,
        description: dict[str, Any],
        *,
        providers: Sequence[str] = DEFAULT_PROVIDERS,
        threads: int | None = None,
    ) -> PoseFrameEncoder:
        """`folder` holds the two graphs the description names."""
        if description.get("kind") != POSE_KIND:
            raise GADError(f"not a {POSE_KIND} encoder description: {description.get('kind')!r}")
        if int(description.get("feature_dim", -1)) != FEATURE_DIM:
            raise GADError(
                f"the pose encoder gives {FEATURE_DIM}-d rows, the description says "
                f"{description.get('feature_dim')}"
            )
        paths = [Path(folder) / str(description[key]) for key in ("detector", "landmarks")]
        missing = [str(path) for path in paths if not path.is_file()]
        if missing:
            raise GADError(f"pose encoder files missing: {missing}")
        detector, active, skipped = open_session(paths[0], providers, threads)
        landmarks, _, _ = open_session(paths[1], providers, threads)
        log.debug("pose encoder on %s", ", ".join(active))
        return cls(
            spec=str(description.get("spec", POSE_KIND)),
            name=str(description.get("name", POSE_KIND)),
            feature_dim=FEATURE_DIM,
            preprocess=PoseFrames.from_dict(description["preprocess"]),
            providers=active,
            detector=PoseDetector(detector),
            landmarks=LandmarkModel(landmarks),
            description=dict(description),
            skipped=skipped,
        )

    def describe(self) -> dict[str, Any]:
        return {key: self.description[key] for key in pose_description() if key in self.description}

    def encode(self, frames: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """uint8 RGB frames [N, H, W, 3] (or one [H, W, 3]) → float32 [N, FEATURE_DIM]."""
        frames = check_frames(frames)
        step = max(1, batch_size)
        parts = [
            self.encode_pixels(self.preprocess.apply(frames[i : i + step]))
            for i in range(0, len(frames), step)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, FEATURE_DIM), np.float32)

    def encode_pixels(self, pixels: Frames) -> np.ndarray:
        """Preprocessed frames (PoseFrames.apply; or a list of frames of any sizes) →
        float32 [N, FEATURE_DIM]."""
        if not len(pixels):
            return np.zeros((0, FEATURE_DIM), np.float32)
        return self._rows(self.estimate(pixels))

    def encode_tracked(
        self, pixels: Frames, rois: Sequence[Roi | None]
    ) -> tuple[np.ndarray, list[Roi | None]]:
        """Preprocessed frames of N streams, each with its previous frame's ROI in its
        pixels (None: detect) → rows [N, FEATURE_DIM] and each stream's ROI for its next
        frame (None where nobody is in view)."""
        poses = self.estimate(pixels, rois)
        following = _following(poses)
        return self._rows(poses), following

    def encode_pixels_tracked(
        self, pixels: Frames, rois: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """`encode_tracked` with the ROIs as arrays: preprocessed frames and
        each one's previous ROI float [N, 4] (a NaN row: none, detect) → rows float32
        [N, FEATURE_DIM] and the next ROIs float64 [N, 4] (NaN where nobody is in view)."""
        rows, following, _ = self.encode_pixels_seen(pixels, rois)
        return rows, following

    def encode_pixels_seen(
        self, pixels: Frames, rois: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`encode_pixels_tracked`, and what it saw: per frame its joints and the present
        probability, float64 [N, VIEW_VALUES] in each frame's pixels (runtime/pose/view.py)."""
        poses = self.estimate(pixels, rois_from_array(rois))
        following = _following(poses)
        keypoints = self._keypoints(poses)
        return pose_features_batch(*keypoints), rois_to_array(following), view_values(*keypoints)

    def keypoints(self, frames: Frames) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frames → the 13 feature joints per frame in frame pixels [N, 13, 2], their
        visibility [N, 13] and the person-present probability [N] (NaN points: nobody)."""
        return self._keypoints(self.estimate(frames))

    def _rows(self, poses: list[tuple[Landmarks | None, float]]) -> np.ndarray:
        return pose_features_batch(*self._keypoints(poses))

    def _keypoints(
        self, poses: list[tuple[Landmarks | None, float]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = len(poses)
        points = np.full((n, NUM_JOINTS, 2), np.nan, np.float32)
        visibility = np.zeros((n, NUM_JOINTS), np.float32)
        present = np.zeros(n, np.float32)
        index = list(BLAZEPOSE_INDEX)
        for i, (pose, score) in enumerate(poses):
            if pose is None:
                present[i] = score
                continue
            points[i] = pose.points[index]
            visibility[i] = pose.visibility[index]
            present[i] = pose.present
        return points, visibility, present

    def estimate(
        self, frames: Frames, rois: Sequence[Roi | None] | None = None
    ) -> list[tuple[Landmarks | None, float]]:
        """Frames → per frame the landmarks of the best person (None: nobody found) and a
        score: the detector's best, or for a frame tracked from its `rois` entry the pose
        flag. A frame whose ROI is None or unusable, or whose tracked pose flag is under
        0.5, is detected again."""
        frames = frame_list(frames)
        if rois is not None and len(rois) != len(frames):
            raise ValueError(f"{len(frames)} frames but {len(rois)} ROIs")
        out: list[tuple[Landmarks | None, float]] = [(None, 0.0)] * len(frames)
        previous = {
            i: roi
            for i, roi in enumerate(rois or [])
            if roi is not None and roi.usable(frames[i].shape[1], frames[i].shape[0])
        }
        if previous:
            tracked = list(previous)
            poses = self._landmarks(frames, tracked, list(previous.values()))
            for i, pose in zip(tracked, poses, strict=True):
                out[i] = (pose, pose.present)
            self.tracked += len(tracked)
        redo = [
            i for i, (pose, score) in enumerate(out) if pose is None or score < PRESENT_THRESHOLD
        ]
        if not redo:
            return out
        detections, scores = self.detector.detect([frames[i] for i in redo])
        self.detected += len(redo)
        found = [(i, d) for i, d in zip(redo, detections, strict=True) if d is not None]
        for i, score in zip(redo, scores, strict=True):
            out[i] = (None, float(score))
        new_rois = [roi_from_keypoints(d.keypoints[0], d.keypoints[1]) for _, d in found]
        where = [i for i, _ in found]
        for i, pose in zip(where, self._landmarks(frames, where, new_rois), strict=True):
            out[i] = (pose, out[i][1])
        return out

    def _landmarks(
        self, frames: list[np.ndarray], where: list[int], rois: list[Roi]
    ) -> list[Landmarks]:
        if not where:
            return []
        crops = np.stack([crop(frames[i], roi) for i, roi in zip(where, rois, strict=True)])
        return self.landmarks.run(crops, rois)

    def check_pixels(self, pixels: np.ndarray) -> tuple[np.ndarray]:
        """One preprocessed frame, as the micro-batcher's per-item check: uint8 [H, W, 3],
        its longer side at most MAX_SIDE."""
        shape = tuple(pixels.shape) if isinstance(pixels, np.ndarray) else ()
        kind = pixels.dtype if isinstance(pixels, np.ndarray) else type(pixels).__name__
        if (
            kind != np.uint8
            or len(shape) != 3
            or shape[2] != 3
            or min(shape[:2]) < 1
            or max(shape[:2]) > MAX_SIDE
        ):
            raise FrameError(
                f"pixels must be one uint8 [H, W, 3] frame, its longer side at most {MAX_SIDE}, "
                f"got {kind} {list(shape)}"
            )
        return (pixels,)


def _following(poses: list[tuple[Landmarks | None, float]]) -> list[Roi | None]:
    """Each frame's ROI for its stream's next frame: from the landmarks' alignment points,
    None where nobody is in view."""
    return [
        None if pose is None or pose.present < PRESENT_THRESHOLD else pose.next_roi()
        for pose, _ in poses
    ]
