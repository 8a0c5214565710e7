"""The frame encoder at serving time: a package's encoder.onnx behind the exact
preprocessing it was trained with (model/preprocess.py). No torch.

    encoder = OnnxFrameEncoder.load(package, providers=("cuda", "cpu"))
    rows = encoder.encode(frames)          # uint8 RGB [N, H, W, 3] → float32 [N, D]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from model.errors import GADError
from model.manifest import ModelPackage
from model.preprocess import Preprocess
from service.engine import DEFAULT_PROVIDERS, open_session

log = logging.getLogger(__name__)


@dataclass
class OnnxFrameEncoder:
    name: str
    feature_dim: int
    preprocess: Preprocess
    providers: tuple[str, ...]
    skipped: dict[str, str] = field(default_factory=dict)
    _session: object = field(default=None, repr=False)

    @classmethod
    def load(
        cls,
        package: ModelPackage,
        *,
        providers: Sequence[str] = DEFAULT_PROVIDERS,
        threads: int | None = None,
    ) -> OnnxFrameEncoder:
        spec = package.encoder
        if spec is None or package.encoder_path is None:
            raise GADError(
                f"model {package.name} v{package.version} has no encoder.onnx: it accepts "
                "feature rows only (export a checkpoint trained on `gad data extract` data)"
            )
        session, active, skipped = open_session(package.encoder_path, providers, threads)
        log.info("encoder %s on %s", spec.get("name"), ", ".join(active))
        return cls(
            name=str(spec.get("name", spec.get("spec"))),
            feature_dim=int(spec["feature_dim"]),
            preprocess=Preprocess.from_dict(spec["preprocess"]),
            providers=active,
            skipped=skipped,
            _session=session,
        )

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """uint8 RGB frames [N, H, W, 3] (or one [H, W, 3]) → features [N, D] float32."""
        return self.encode_pixels(self.preprocess.apply(frames))

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
