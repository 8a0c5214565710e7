"""Export a torch module to ONNX and check it against PyTorch: the pieces every exported
graph (head.onnx, clip.onnx) shares. LoRA is merged first (`prepare_for_export`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from model.export.encoder import quiet_exporter
from model.gad import GADClassifier
from model.lora import merge_for_head
from runtime.errors import CheckpointError
from runtime.manifest import Verify

OPSET = 18
# fp32 graphs of these models agree with PyTorch to ~1e-5; 1e-3 leaves room for the
# reassociated sums of merged LoRA weights without hiding a wrong graph (logits ~1-10).
DEFAULT_TOLERANCE = 1e-3
SINGLE_FILE_LIMIT = 1_800_000_000  # protobuf's 2 GB cap, with margin
STREAMING_NOT_SERVED = (
    "a streaming-attention checkpoint is served by step.onnx (one step per frame against "
    "K/V rings), not by a whole-window head or the PyTorch window backend: export it with "
    "`gad export` and serve the package"
)
GENERATIVE_REFUSED = (
    "a generative checkpoint has no [CLS] head to export: it classifies by decoding; "
    "export a discriminative or gad checkpoint"
)


def prepare_for_export(model: GADClassifier, *, streaming: bool = False) -> GADClassifier:
    """Merge LoRA into the backbone for the [CLS] path (in place; generation is lost).
    `streaming`: for step.onnx; a streaming model's head reads a [CLS] the windowed graph
    never builds, so it is refused otherwise (and a windowed one is refused for a step)."""
    if model.head is None:
        raise CheckpointError(GENERATIVE_REFUSED)
    if model.config.is_streaming != streaming:
        raise CheckpointError(
            STREAMING_NOT_SERVED if model.config.is_streaming else "a windowed model has no step"
        )
    model.lm = merge_for_head(model.lm)
    model.freeze_prefix()
    return model.eval()


def export_graph(
    graph: nn.Module, path: Path, outputs: list[str], *, steps: int, feature_dim: int
) -> list[str]:
    """Export `graph(features [B, T, D], mask [B, T])` with dynamic batch and time."""
    example = (torch.zeros(2, steps, feature_dim), torch.ones(2, steps, dtype=torch.long))
    batch, time = torch.export.Dim("batch"), torch.export.Dim("time", min=2)
    dims = {"features": {0: batch, 1: time}, "mask": {0: batch, 1: time}}
    return save_onnx(graph, example, path, outputs, dims)


def save_onnx(
    graph: nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    outputs: list[str],
    dynamic_shapes: dict[str, dict[int, Any]],
    *,
    optimize: bool = True,
) -> list[str]:
    """torch.onnx.export (dynamo) of `graph` on `example`, inputs named as `dynamic_shapes`;
    the weights go to an external data file when the graph is over protobuf's limit.
    `optimize=False` skips onnxscript's graph optimiser (onnxruntime optimises the graph
    when it loads it anyway). Returns the file names written."""
    size = sum(t.numel() * t.element_size() for t in [*graph.parameters(), *graph.buffers()])
    with quiet_exporter():
        program = torch.onnx.export(
            graph.eval(),
            example,
            dynamo=True,
            opset_version=OPSET,
            input_names=list(dynamic_shapes),
            output_names=outputs,
            dynamic_shapes=dynamic_shapes,
            optimize=optimize,
            verbose=False,
        )
        program.save(str(path), external_data=size > SINGLE_FILE_LIMIT)
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name))


def verify_graph(
    path: Path,
    probe: tuple[torch.Tensor, torch.Tensor],
    references: dict[str, np.ndarray],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Verify:
    """Run the graph in onnxruntime on `probe`, batched and one window alone, and compare
    each output with PyTorch's; raise above `tolerance`."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    features, mask = (t.numpy() for t in probe)
    names = list(references)
    got = session.run(names, {"features": features, "mask": mask.astype(np.int64)})
    # Batch independence: each window alone must give its row of the batched result.
    single = session.run(names, {"features": features[:1], "mask": mask[:1]})
    diff, agree = 0.0, []
    for name, batched, alone in zip(names, got, single, strict=True):
        reference = references[name]
        diff = max(
            diff,
            float(np.abs(batched - reference).max()),
            float(np.abs(alone - reference[:1]).max()),
        )
        agree.append(float((batched.argmax(-1) == reference.argmax(-1)).mean()))
    result = Verify(
        max_abs_diff=diff,
        tolerance=tolerance,
        windows=len(features),
        argmax_agreement=min(agree),
        provider="CPUExecutionProvider",
    )
    if not diff <= tolerance:
        raise CheckpointError(
            f"{path.name} differs from PyTorch by {diff:.3g} (tolerance {tolerance:g}) on "
            f"{len(features)} windows: the export is wrong, not published"
        )
    return result
