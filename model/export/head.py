"""head.onnx: the per-frame model's one-pass [CLS] path, features window → class logits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from model.config import ModelConfig
from model.export.graph import DEFAULT_TOLERANCE, OPSET, export_graph, verify_graph
from model.gad import GADClassifier
from runtime.manifest import HEAD_FILE, HeadSection, TensorSpec, Verify
from runtime.windowing import build_windows


class HeadGraph(nn.Module):
    """What head.onnx computes: logits for a batch of windows, one forward pass."""

    def __init__(self, model: GADClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model.class_logits(features, mask)


def probe_windows(
    model: GADClassifier, *, rows: np.ndarray | None = None, batch: int = 3, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows to compare ONNX with PyTorch on: windows of real feature `rows` (one video,
    e.g. `training.probes.frame_probe_rows`) when given — from its start, so left padding
    is exercised — else random features; the first window is always partly padded."""
    spec = model.config.window
    if rows is not None:
        rows = np.asarray(rows, dtype=np.float32)
        frames = np.linspace(0, len(rows) - 1, batch).astype(int)
        frames[0] = min(2, len(rows) - 1)
        features, mask = build_windows(rows, frames, spec)
        return torch.from_numpy(features), torch.from_numpy(mask).long()
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(batch, spec.size, model.config.feature_dim, generator=gen)
    mask = torch.ones(batch, spec.size, dtype=torch.long)
    mask[0, : spec.size // 2] = 0
    features[0, : spec.size // 2] = 0
    return features, mask


def export_head(model: GADClassifier, path: Path) -> list[str]:
    """Write head.onnx (dynamic batch and time); returns the file names written."""
    cfg = model.config
    return export_graph(
        HeadGraph(model), path, ["logits"], steps=cfg.window.size, feature_dim=cfg.feature_dim
    )


def verify_head(
    path: Path,
    probe: tuple[torch.Tensor, torch.Tensor],
    reference: np.ndarray,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Verify:
    """Compare head.onnx in onnxruntime with PyTorch logits; raise above `tolerance`."""
    return verify_graph(path, probe, {"logits": reference}, tolerance=tolerance)


def head_section(cfg: ModelConfig, files: list[str]) -> HeadSection:
    """The manifest's "head": head.onnx's files, its inputs and outputs."""
    return HeadSection(
        file=HEAD_FILE,
        files=tuple(files),
        opset=OPSET,
        inputs={
            "features": TensorSpec(("batch", "time", cfg.feature_dim), "float32"),
            "mask": TensorSpec(("batch", "time"), "int64"),
        },
        outputs={"logits": TensorSpec(("batch", cfg.num_classes), "float32")},
    )
