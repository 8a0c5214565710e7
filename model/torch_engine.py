"""The engine's optional PyTorch backend: a checkpoint served directly (e.g. bf16 on a GPU
host). TorchEngine implements runtime.engine.Engine, as OnnxEngine does; TorchStepEngine
is a streaming checkpoint's step (runtime.stepping.StepEngine with the graph in PyTorch).

TorchBackend opens both for a package (runtime.backends.Backend): `gad serve` builds it
when GAD_BACKEND=torch and hands it to the service, which never imports torch or names this
module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from model.checkpoint import load_checkpoint
from model.export.graph import prepare_for_export
from model.export.step import STEP_INPUTS, StepGraph
from model.gad import GADClassifier
from runtime.calibration import softmax
from runtime.engine import check_windows
from runtime.manifest import ModelPackage
from runtime.stepping import StepEngine

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class TorchEngine:
    model: GADClassifier
    device: str
    temperature: float = 1.0  # the package's calibration (runtime.calibration.softmax)

    @classmethod
    def load(cls, checkpoint: Path, *, device: str = "auto", dtype: str = "float32") -> TorchEngine:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model = load_checkpoint(Path(checkpoint), dtype=DTYPES[dtype])
        # The served path never decodes: merge LoRA into the projections (as head.onnx
        # does), which on a GPU removes ~7 adapter kernels per layer from every pass.
        model = prepare_for_export(model).to(device).eval()
        return cls(model, device)

    @property
    def providers(self) -> tuple[str, ...]:
        return (f"torch:{self.device}",)

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.model.config.class_names)

    @property
    def feature_dim(self) -> int:
        return self.model.config.feature_dim

    def logits(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        features, mask = check_windows(features, mask, self.feature_dim)
        with torch.inference_mode():
            out = self.model.class_logits(
                torch.from_numpy(features).to(self.device), torch.from_numpy(mask).to(self.device)
            )
        return out.float().cpu().numpy()

    def classify(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return softmax(self.logits(features, mask), self.temperature)


class TorchStepEngine(StepEngine):
    """The step of a streaming checkpoint in PyTorch (LoRA merged, as step.onnx): the same
    rings and batching as the ONNX step engine; the rings stay numpy on the host, copied to
    the device for each batched step."""

    @classmethod
    def load_checkpoint(
        cls, checkpoint: Path, *, device: str = "auto", dtype: str = "float32"
    ) -> TorchStepEngine:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model = load_checkpoint(Path(checkpoint), dtype=DTYPES[dtype])
        model = prepare_for_export(model, streaming=True)
        graph = StepGraph(model, model.config.stream_window).to(device).eval()
        shape = graph.ring_shape()
        return cls(
            ring_shape=shape,
            feature_dim=model.config.feature_dim,
            classes=tuple(model.config.class_names),
            providers=(f"torch:{device}",),
            _session=graph,
        )

    @property
    def device(self) -> torch.device:
        return next(self._session.parameters()).device

    def _run_graph(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        device = self.device
        with torch.inference_mode():
            logits, rows = self._session(
                *(torch.from_numpy(feeds[name]).to(device) for name in STEP_INPUTS)
            )
        return logits.float().cpu().numpy(), rows.float().cpu().numpy()


@dataclass(frozen=True)
class TorchBackend:
    """runtime.backends.Backend over a checkpoint in PyTorch (GAD_BACKEND=torch): `gad
    serve` builds it and hands it to the service, which never names this module."""

    checkpoint: Path
    dtype: str = "bfloat16"
    device: str = "auto"
    name: str = "torch"

    def head(self, package: ModelPackage) -> TorchEngine:
        engine = TorchEngine.load(self.checkpoint, device=self.device, dtype=self.dtype)
        engine.temperature = package.temperature  # the package's calibration, as ONNX's
        return engine

    def step(self, package: ModelPackage) -> TorchStepEngine:
        engine = TorchStepEngine.load_checkpoint(
            self.checkpoint, device=self.device, dtype=self.dtype
        )
        engine.package = package  # its calibration: the same probabilities as step.onnx's
        return engine
