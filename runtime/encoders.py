"""Frame encoders run by onnxruntime. Two kinds, named by the description's `kind`:

  image (no `kind`, the default)  OnnxFrameEncoder: `encoder.onnx` behind the exact
      preprocessing it was trained with (runtime/preprocess.py), e.g. EfficientNet-Lite0.
  pose-blazepose  runtime.pose.encoder.PoseFrameEncoder: BlazePose's detector and landmark
      graphs → normalised keypoints (runtime/pose_features.py).

`open_frame_encoder(package)` opens whichever kind a package's manifest describes; both
kinds offer `encode`, `describe`, `feature_dim`, `name`, and the service's split
`preprocess.apply` → `check_pixels` / `encode_pixels`.

Both are torch-free (the service encodes camera frames with them). The image encoder is
the default for `gad data extract`, where it is 3-6x faster than PyTorch eager on a CPU
with the same features (max |difference| ~1e-5, checked when the export is made).

    encoder = open_frame_encoder(package)                    # a model package's encoder
    encoder = load_onnx_encoder("efficientnet-lite0")  # model/export/encoder.py, cached
    rows = encoder.encode(frames)        # uint8 RGB [N, H, W, 3] → float32 [N, D]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from runtime.errors import GADError
from runtime.manifest import IMAGE_KIND, POSE_KIND, ModelPackage
from runtime.pose.encoder import PoseFrameEncoder
from runtime.preprocess import Preprocess, encoder_description
from runtime.sessions import DEFAULT_PROVIDERS, open_session

log = logging.getLogger(__name__)


@dataclass
class OnnxFrameEncoder:
    spec: str
    name: str
    feature_dim: int
    preprocess: Preprocess
    providers: tuple[str, ...]
    skipped: dict[str, str] = field(default_factory=dict)
    _session: Any = field(default=None, repr=False)

    @classmethod
    def open(
        cls,
        path: Path,
        description: dict[str, Any],
        *,
        providers: Sequence[str] = DEFAULT_PROVIDERS,
        threads: int | None = None,
    ) -> OnnxFrameEncoder:
        """`path` is encoder.onnx; `description` is FrameEncoder.describe() of its source."""
        session, active, skipped = open_session(path, providers, threads)
        log.debug("encoder %s on %s", description.get("name"), ", ".join(active))
        return cls(
            spec=str(description.get("spec", description.get("name"))),
            name=str(description.get("name", description.get("spec"))),
            feature_dim=int(description["feature_dim"]),
            preprocess=Preprocess.from_dict(description["preprocess"]),
            providers=active,
            skipped=skipped,
            _session=session,
        )

    @classmethod
    def load(
        cls,
        package: ModelPackage,
        *,
        providers: Sequence[str] = DEFAULT_PROVIDERS,
        threads: int | None = None,
    ) -> OnnxFrameEncoder:
        encoder = package.encoder
        if encoder is None or package.encoder_path is None:
            raise GADError(
                f"model {package.name} v{package.version} has no encoder.onnx: it accepts "
                "feature rows only (export a checkpoint trained on `gad data extract` data)"
            )
        if encoder.kind != IMAGE_KIND:
            raise GADError(
                f"model {package.name} v{package.version} has a {encoder.kind} "
                "encoder, not an image encoder: open it with open_frame_encoder"
            )
        description = encoder.to_json()
        return cls.open(package.encoder_path, description, providers=providers, threads=threads)

    def describe(self) -> dict[str, Any]:
        return encoder_description(self.spec, self.name, self.feature_dim, self.preprocess)

    def encode(self, frames: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """uint8 RGB frames [N, H, W, 3] (or one [H, W, 3]) → features [N, D] float32."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        parts = [
            self.encode_pixels(self.preprocess.apply(frames[i : i + batch_size]))
            for i in range(0, len(frames), max(1, batch_size))
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.feature_dim), np.float32)

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Preprocessed frames [N, 3, S, S] float32 → features [N, D] float32."""
        if not len(pixels):
            return np.zeros((0, self.feature_dim), np.float32)
        (features,) = self._session.run(None, {self._session.get_inputs()[0].name: pixels})
        return np.asarray(features, dtype=np.float32)

    def check_pixels(self, pixels: np.ndarray) -> tuple[np.ndarray]:
        """One preprocessed frame, as the micro-batcher's per-item check."""
        size = self.preprocess.size
        if pixels.shape != (3, size, size) or pixels.dtype != np.float32:
            raise ValueError(
                f"pixels must be float32 [3, {size}, {size}], got {pixels.dtype} "
                f"{list(pixels.shape)}"
            )
        return (pixels,)


FrameEncoderKind = OnnxFrameEncoder | PoseFrameEncoder


class FramePreprocess(Protocol):
    """What the service needs of an encoder's preprocessing, of either kind: frames → the
    fixed-shape per-frame input its `encode_pixels` batches (Preprocess: normalised float32
    NCHW; FrameLetterbox: letterboxed uint8 NHWC). Bad frames raise preprocess.FrameError."""

    @property
    def size(self) -> int: ...

    def apply(self, frames: np.ndarray) -> np.ndarray: ...


def open_frame_encoder(
    package: ModelPackage,
    *,
    providers: Sequence[str] = DEFAULT_PROVIDERS,
    threads: int | None = None,
) -> FrameEncoderKind:
    """The frame encoder a package's manifest describes, of whichever kind it is."""
    encoder = package.encoder
    if encoder is not None and encoder.kind == POSE_KIND:
        return PoseFrameEncoder.open(
            package.folder, encoder.to_json(), providers=providers, threads=threads
        )
    return OnnxFrameEncoder.load(package, providers=providers, threads=threads)  # or refuses
