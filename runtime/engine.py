"""The inference engines: a model package's head.onnx (and its optional clip.onnx) in
onnxruntime, behind two protocols the service types against. No torch.

    Engine      a per-frame head: windows → class probabilities. OnnxEngine here;
                model/torch_engine.py's TorchEngine (a checkpoint in PyTorch) too.
    ClipModel   a whole-clip model: clips → step, task and next-step probabilities.
                ClipEngine here.

    engine = OnnxEngine.load("models/demo", providers=("cuda", "cpu"), threads=2)
    probs = engine.classify(features, mask)      # [B, T, D] float32, [B, T] → [B, C]

    clip = ClipEngine.load("models/coin", providers=("cpu",))
    step, task, next_step = clip.classify(features, mask)   # [B, S], [B, K], [B, S]

Providers are tried in the order given (TensorRT → CUDA → CPU by default); one that this
onnxruntime build lacks, or that fails to initialise (no driver, missing CUDA libraries),
is skipped with a logged reason, so a GPU image on a CPU host still serves.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Protocol, Self, runtime_checkable

import numpy as np

from runtime.calibration import softmax as softmax  # re-exported: the one softmax
from runtime.errors import GADError
from runtime.manifest import CLIP_FILE, CLIP_OUTPUTS, ClipSection, ModelPackage, read_package
from runtime.sessions import DEFAULT_PROVIDERS, open_session

log = logging.getLogger(__name__)


class EngineInputError(GADError, ValueError):
    """Windows of the wrong shape, dtype or values (NaN/inf): the caller's mistake."""


@runtime_checkable
class Engine(Protocol):
    """A per-frame head: a batch of windows (runtime.windowing.build_windows) → one class
    distribution per window, in one forward pass. What the micro-batcher and the service
    call; OnnxEngine and model.torch_engine.TorchEngine implement it."""

    @property
    def providers(self) -> tuple[str, ...]:
        """Where it runs, best first (onnxruntime providers, or "torch:<device>")."""
        ...

    @property
    def classes(self) -> tuple[str, ...]: ...

    @property
    def feature_dim(self) -> int: ...

    def logits(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Class logits [B, C] for features [B, T, D] float32 and mask [B, T] (1 = frame)."""
        ...

    def classify(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Class probabilities [B, C]: softmax of `logits` at the package's temperature
        (runtime.calibration.softmax; `ModelPackage.temperature`, 1 uncalibrated)."""
        ...


def check_windows(
    features: np.ndarray, mask: np.ndarray, feature_dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """Validated (features float32 [B, T, D], mask int64 [B, T]) or EngineInputError."""
    features = np.asarray(features)
    mask = np.asarray(mask)
    if features.ndim != 3 or features.shape[-1] != feature_dim:
        raise EngineInputError(
            f"windows must be [batch, time, {feature_dim}], got {list(features.shape)}"
        )
    if mask.shape != features.shape[:2]:
        raise EngineInputError(
            f"mask must be [batch, time] = {list(features.shape[:2])}, got {list(mask.shape)}"
        )
    if features.dtype.kind not in "fiu":
        raise EngineInputError(f"features must be numbers, got dtype {features.dtype}")
    features = features.astype(np.float32, copy=False)
    if not np.isfinite(features).all():
        raise EngineInputError("features contain NaN or infinity")
    if mask.size and not np.isin(mask, (0, 1)).all():
        raise EngineInputError("mask must hold only 0 (padding) and 1 (frame)")
    if features.shape[0] and not mask.any(axis=1).all():
        raise EngineInputError("every window needs at least one frame (mask all zero)")
    return np.ascontiguousarray(features), mask.astype(np.int64, copy=False)


@dataclass
class PackageSession:
    """One of a package's graphs in an onnxruntime session (providers tried in order,
    `threads` intra-op threads): what OnnxEngine and ClipEngine share."""

    package: ModelPackage
    providers: tuple[str, ...]  # what the session actually runs on, best first
    threads: int | None
    skipped: dict[str, str] = field(default_factory=dict)  # provider → why not used
    _session: Any = field(default=None, repr=False)  # onnxruntime.InferenceSession (untyped)

    role: ClassVar[str] = "graph"

    @classmethod
    def graph_path(cls, package: ModelPackage) -> Path:
        raise NotImplementedError

    @classmethod
    def load(
        cls,
        package: Path | ModelPackage,
        *,
        providers: Sequence[str] = DEFAULT_PROVIDERS,
        threads: int | None = None,
        check_hashes: bool = True,
    ) -> Self:
        if not isinstance(package, ModelPackage):
            package = read_package(Path(package), check_hashes=check_hashes)
        session, active, skipped = open_session(cls.graph_path(package), providers, threads)
        log.debug("%s %s v%s on %s", cls.role, package.name, package.version, ", ".join(active))
        return cls(package, active, threads, skipped, session)

    @property
    def device(self) -> str:
        return "gpu" if self.providers[0] != "CPUExecutionProvider" else "cpu"


@dataclass
class OnnxEngine(PackageSession):
    """head.onnx: a batch of windows → class probabilities."""

    role: ClassVar[str] = "engine"

    @classmethod
    def graph_path(cls, package: ModelPackage) -> Path:
        return package.head_path

    @property
    def classes(self) -> tuple[str, ...]:
        return self.package.classes

    @property
    def feature_dim(self) -> int:
        return self.package.feature_dim

    def logits(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        features, mask = check_windows(features, mask, self.feature_dim)
        if not len(features):
            return np.zeros((0, len(self.classes)), np.float32)
        logits: np.ndarray = self._session.run(["logits"], {"features": features, "mask": mask})[0]
        return logits

    def classify(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Class probabilities [B, C] for a batch of windows (one forward pass each), at
        the package's calibrated temperature."""
        return softmax(self.logits(features, mask), self.package.temperature)


class ClipScores(NamedTuple):
    """A batch of clips' probabilities: step [B, S], task [B, K], next_step [B, S]."""

    step: np.ndarray
    task: np.ndarray
    next_step: np.ndarray


@runtime_checkable
class ClipModel(Protocol):
    """A whole-clip model: a batch of clips (rows by runtime.windowing.build_clip) → step,
    task and next-step probabilities in one pass. ClipEngine implements it."""

    @property
    def providers(self) -> tuple[str, ...]: ...

    @property
    def steps(self) -> tuple[str, ...]: ...

    @property
    def tasks(self) -> tuple[str, ...]: ...

    @property
    def max_frames(self) -> int:
        """The most rows one clip may have (build_clip subsamples longer clips to it)."""
        ...

    def classify(self, features: np.ndarray, mask: np.ndarray) -> ClipScores:
        """Probabilities for clips: features [B, T, D] float32, mask [B, T] (1 = row)."""
        ...


@dataclass
class ClipEngine(PackageSession):
    """clip.onnx: a batch of whole clips (rows by runtime.windowing.build_clip) → which
    step, which task, which step comes next — one forward pass answers all three."""

    role: ClassVar[str] = "clip model"

    @classmethod
    def graph_path(cls, package: ModelPackage) -> Path:
        if package.clip_path is None:
            raise GADError(
                f"model {package.name} v{package.version} has no clip model ({CLIP_FILE}): "
                "export it with a clip model to answer step / task / next step"
            )
        return package.clip_path

    @property
    def _clip(self) -> ClipSection:
        clip = self.package.clip
        assert clip is not None  # graph_path refused a package without one
        return clip

    @property
    def steps(self) -> tuple[str, ...]:
        return self._clip.steps

    @property
    def tasks(self) -> tuple[str, ...]:
        return self._clip.tasks

    @property
    def max_frames(self) -> int:
        return self._clip.max_frames

    def logits(self, features: np.ndarray, mask: np.ndarray) -> ClipScores:
        features, mask = check_windows(features, mask, self.package.feature_dim)
        if features.shape[1] > self.max_frames:
            raise EngineInputError(
                f"clips of {features.shape[1]} rows: this clip model reads at most "
                f"{self.max_frames} (runtime.windowing.build_clip subsamples longer clips)"
            )
        if not len(features):
            sizes = (len(self.steps), len(self.tasks), len(self.steps))
            return ClipScores(*(np.zeros((0, n), np.float32) for n in sizes))
        outputs = self._session.run(list(CLIP_OUTPUTS), {"features": features, "mask": mask})
        return ClipScores(*outputs)

    def classify(self, features: np.ndarray, mask: np.ndarray) -> ClipScores:
        """Probabilities for a batch of clips: features [B, T, D], mask [B, T] (1 = row)."""
        return ClipScores(*(softmax(logits) for logits in self.logits(features, mask)))
