"""Frame preprocessing for the frame encoders: uint8 RGB frames → normalised float32 NCHW.

Torch-free (numpy + cv2): the service applies exactly this before running `encoder.onnx`,
and `FrameEncoder.encode` calls the very same `Preprocess.apply`, so a frame gets the same
pixels whether it is encoded in PyTorch for training or by onnxruntime in a live stream.

Resize policies:
  shorter-side-then-center-crop  scale the frame so its shorter side is `resize_to`
                 (aspect kept), then cut the central `size`×`size` square; the ImageNet
                 evaluation recipe (256 → 224).
  stretch        scale the whole frame to `size`×`size` (aspect not kept, nothing cut);
                 `resize_to` must equal `size`.

Frames more than MAX_ASPECT (16) times longer than wide, or the reverse, are refused by
shorter-side-then-center-crop (its resize would blow them up before the crop).

Interpolation is cv2's INTER_AREA when the output has fewer pixels than the frame (it
averages the source pixels each output pixel covers: no aliasing) and INTER_LINEAR when
it has more. The crop offset is `(resized - size) // 2` on each axis. Pixel values are
scaled to [0, 1] and then normalised per RGB channel: `(x / 255 - mean) / std`.
Frames must be RGB: cv2.imread / cv2.imdecode give BGR (`cv2.cvtColor(img, cv2.COLOR_BGR2RGB)`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import cv2
import numpy as np

from runtime.errors import ConfigError, GADError

SHORTER_SIDE_CROP = "shorter-side-then-center-crop"
STRETCH = "stretch"
RESIZE_POLICIES = (SHORTER_SIDE_CROP, STRETCH)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# shorter-side-then-center-crop resizes the whole frame before cropping it: a 1 × 2000 sliver
# (a 79-byte PNG) would become 256 × 512,000 pixels (375 MiB) to yield one 224² crop.
# Frames longer than this ratio are refused instead.
MAX_ASPECT = 16


class FrameError(GADError, ValueError):
    """A frame array the preprocessing cannot take (wrong dtype, shape or channel count)."""


@dataclass(frozen=True)
class Preprocess:
    """How a frame becomes encoder input; saved in data_info.json and model manifests."""

    size: int  # side of the square model input
    resize: str  # one of RESIZE_POLICIES
    resize_to: int  # shorter side before the centre crop (== size for "stretch")
    mean: tuple[float, float, float]  # per RGB channel, on the [0, 1] scale
    std: tuple[float, float, float]
    color: str = "RGB"
    layout: str = "NCHW"

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if self.resize not in RESIZE_POLICIES:
            raise ConfigError(f"resize must be one of {RESIZE_POLICIES}, got {self.resize!r}")
        for name in ("size", "resize_to"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.resize == SHORTER_SIDE_CROP and self.resize_to < self.size:
            raise ConfigError(
                f"resize_to ({self.resize_to}) must be >= size ({self.size}) "
                f"for {SHORTER_SIDE_CROP}"
            )
        if self.resize == STRETCH and self.resize_to != self.size:
            raise ConfigError(
                f"resize_to ({self.resize_to}) must equal size ({self.size}) for {STRETCH}"
            )
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ConfigError(f"mean and std need 3 values (R, G, B), got {self.mean}/{self.std}")
        if min(self.std) <= 0:
            raise ConfigError(f"std must be positive, got {self.std}")
        if self.color != "RGB" or self.layout != "NCHW":
            raise ConfigError(
                "only color 'RGB' and layout 'NCHW' are supported, "
                f"got {self.color!r}/{self.layout!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mean"] = list(self.mean)
        data["std"] = list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocess:
        if not isinstance(data, dict):
            raise ConfigError(f"preprocess must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown preprocess keys {sorted(unknown)}; known: {sorted(known)}")
        required = {f.name for f in fields(cls) if f.name not in ("color", "layout")}
        missing = required - set(data)
        if missing:
            raise ConfigError(f"preprocess is missing {sorted(missing)}")
        return cls(**data)

    def apply(self, frames: np.ndarray) -> np.ndarray:
        """uint8 RGB `[N, H, W, 3]` (or one `[H, W, 3]`) → float32 `[N, 3, size, size]`."""
        frames = check_frames(frames)
        height, width = frames.shape[1:3]
        too_long = max(height, width) > MAX_ASPECT * min(height, width)
        if self.resize == SHORTER_SIDE_CROP and too_long:
            raise FrameError(
                f"frames of {width}×{height} pixels are over the {MAX_ASPECT}:1 aspect ratio "
                f"limit of {self.resize}"
            )
        out = np.empty((len(frames), self.size, self.size, 3), dtype=np.uint8)
        for i, frame in enumerate(frames):
            out[i] = self._resize(frame)
        # (x / 255 - mean) / std as one multiply-add per pixel.
        scale = 1.0 / (255.0 * np.asarray(self.std, dtype=np.float32))
        shift = -np.asarray(self.mean, dtype=np.float32) / np.asarray(self.std, dtype=np.float32)
        pixels = out.astype(np.float32) * scale + shift
        return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))

    def _resize(self, frame: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        if self.resize == STRETCH:
            return _cv2_resize(frame, self.size, self.size)
        scale = self.resize_to / min(height, width)
        if height <= width:
            new_h, new_w = self.resize_to, max(self.resize_to, round(width * scale))
        else:
            new_h, new_w = max(self.resize_to, round(height * scale)), self.resize_to
        resized = _cv2_resize(frame, new_w, new_h)
        top = (new_h - self.size) // 2
        left = (new_w - self.size) // 2
        return resized[top : top + self.size, left : left + self.size]


def _cv2_resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    if (frame.shape[0], frame.shape[1]) == (height, width):
        return frame
    shrinking = width * height < frame.shape[0] * frame.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(frame, (width, height), interpolation=interpolation)


def encoder_description(
    spec: str, name: str, feature_dim: int, preprocess: Preprocess
) -> dict[str, Any]:
    """What data_info.json and model manifests record of a frame encoder (PyTorch or ONNX):
    enough to rebuild its preprocessing without torch."""
    return {
        "spec": spec,
        "name": name,
        "feature_dim": feature_dim,
        "preprocess": preprocess.to_dict(),
    }


def check_frames(frames: np.ndarray) -> np.ndarray:
    """uint8 RGB [N, H, W, 3] (or one [H, W, 3]) as [N, H, W, 3], else FrameError."""
    if not isinstance(frames, np.ndarray):
        raise FrameError(f"frames must be a numpy array, got {type(frames).__name__}")
    if frames.dtype != np.uint8:
        raise FrameError(f"frames must be uint8 RGB (0..255), got dtype {frames.dtype}")
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise FrameError(
            f"frames must be [N, H, W, 3] or [H, W, 3] RGB, got shape {tuple(frames.shape)}"
        )
    if frames.shape[1] == 0 or frames.shape[2] == 0:
        raise FrameError(f"frames are empty: shape {tuple(frames.shape)}")
    return frames
