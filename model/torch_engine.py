"""The engine's optional PyTorch backend: a checkpoint served directly (e.g. bf16 on a GPU
host). TorchEngine implements runtime.engine.Engine, as OnnxEngine does.

The service imports this module only when asked for the torch backend; nothing else in
the serving path imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from model.checkpoint import load_checkpoint
from model.export.graph import prepare_for_export
from model.gad import GADClassifier
from runtime.engine import check_windows

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class TorchEngine:
    model: GADClassifier
    device: str

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
        return torch.softmax(torch.from_numpy(self.logits(features, mask)), -1).numpy()
