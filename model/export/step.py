"""step.onnx: one streaming step per frame (model/streaming/) for a batch of streams.

    features   [B, D]                  float32  the new frame of each stream
    ring       [B, L, 2, kvH, W-1, d]  float32  per layer the last W-1 frames' pre-RoPE K, V
                                                (oldest first)
    ring_mask  [B, W-1]                int64    1 where the ring holds a frame
    → logits   [B, C]                  float32
      rows     [B, L, 2, kvH, d]       float32  the new frame's K, V per layer, to push into
                                                the ring (the caller shifts it: oldest out)

The prompt's K/V are the same for every stream and are constants of the graph (computed
once at export, LoRA merged). The caller keeps the rings (runtime/stepping.py), so a graph
call never copies a stream's whole state twice and streams batch freely: every stream has
the same shapes, and a stream still filling its window masks the empty slots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from model.export.graph import DEFAULT_TOLERANCE, OPSET, save_onnx
from model.gad import GADClassifier
from model.streaming.runner import StreamingGAD
from runtime.errors import CheckpointError
from runtime.manifest import PrefillSection, StepSection, TensorSpec, Verify

STEP_INPUTS = ("features", "ring", "ring_mask")
STEP_OUTPUTS = ("logits", "rows")
PREFILL_INPUTS = ("features", "frame_mask", "ring", "ring_mask")
PREFILL_OUTPUTS = ("logits", "ring_out", "ring_mask_out")


class StepGraph(nn.Module):
    """What step.onnx computes (see the module docstring)."""

    def __init__(self, model: GADClassifier, window: int) -> None:
        super().__init__()
        if window < 2:
            raise CheckpointError(
                f"a streaming window of {window} frame has no K/V ring to serve: "
                "train with --window 2 or more"
            )
        self.model = model
        self.stream = StreamingGAD(model, window)
        with torch.no_grad():
            prompt_kv = self.stream.prompt_state()
        self.layers = len(prompt_kv)
        for layer, (k, v) in prompt_kv.items():
            self.register_buffer(f"prompt_k{layer}", k.detach().float())
            self.register_buffer(f"prompt_v{layer}", v.detach().float())
        k0 = prompt_kv[0][0]
        self.kv_heads, self.head_dim = int(k0.shape[1]), int(k0.shape[-1])

    def ring_shape(self) -> tuple[int, int, int, int, int]:
        """One stream's ring: [L, 2, kvH, W-1, d]."""
        return (self.layers, 2, self.kv_heads, self.stream.window - 1, self.head_dim)

    def _prompt_kv(self) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        dtype = self.model.lm_dtype
        return {
            layer: (
                getattr(self, f"prompt_k{layer}").to(dtype),
                getattr(self, f"prompt_v{layer}").to(dtype),
            )
            for layer in range(self.layers)
        }

    def _rings(self, ring: torch.Tensor) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        dtype = self.model.lm_dtype
        return {
            layer: (ring[:, layer, 0].to(dtype), ring[:, layer, 1].to(dtype))
            for layer in range(self.layers)
        }

    def forward(
        self, features: torch.Tensor, ring: torch.Tensor, ring_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        rings = self._rings(ring)
        logits, new = self.stream.step_rows(features, self._prompt_kv(), rings, ring_mask.bool())
        rows = torch.stack(
            [torch.stack([new[layer][0][:, :, 0], new[layer][1][:, :, 0]], 1) for layer in rings],
            dim=1,
        )
        return logits.float(), rows.float()


class PrefillGraph(StepGraph):
    """What prefill.onnx computes: `frames` steps of one stream in one banded pass.

        features    [1, F, D]               float32  the stream's next F frames
        frame_mask  [1, F]                  int64    1 for a real frame (0: front padding
                                                     of a stream that starts empty)
        ring        [1, L, 2, kvH, W-1, d]  float32  as for step.onnx
        ring_mask   [1, W-1]                int64
        → logits        [1, F, C]           float32  each frame's logits
          ring_out      [1, L, 2, kvH, W-1, d]       the rings after the F frames
          ring_mask_out [1, W-1]            int64

    Equal to F calls of step.onnx. The shapes are fixed (F = `frames`): a dynamic frame
    axis makes torch.export's symbolic shape reasoning take hours on a 30-layer model. A
    resume or a clip starts empty, so it is padded at the front to whole chunks; a stream
    continued from its rings takes whole chunks, then single steps."""

    def __init__(self, model: GADClassifier, window: int, frames: int) -> None:
        super().__init__(model, window)
        self.frames = frames

    def forward(  # type: ignore[override]
        self,
        features: torch.Tensor,
        frame_mask: torch.Tensor,
        ring: torch.Tensor,
        ring_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, new, mask = self.stream.prefill_rows(
            features, self._prompt_kv(), self._rings(ring), ring_mask.bool(), frame_mask.bool()
        )
        rings = torch.stack(
            [torch.stack([new[layer][0], new[layer][1]], 1) for layer in range(self.layers)],
            dim=1,
        )
        return logits.float(), rings.float(), mask.long()


def export_prefill(graph: PrefillGraph, path: Path) -> list[str]:
    """Write prefill.onnx (static shapes: one stream, `graph.frames` frames)."""
    dim = graph.model.config.feature_dim
    example = (
        torch.zeros(1, graph.frames, dim),
        torch.ones(1, graph.frames, dtype=torch.long),
        torch.zeros(1, *graph.ring_shape()),
        torch.zeros(1, graph.stream.window - 1, dtype=torch.long),
    )
    dims: dict[str, dict[int, Any]] = {name: {} for name in PREFILL_INPUTS}
    # onnxscript's optimiser ran 18+ min on SmolLM2's 30 banded layers without finishing;
    # unoptimised the export takes ~70 s and onnxruntime optimises the graph at load
    return save_onnx(graph, example, path, list(PREFILL_OUTPUTS), dims, optimize=False)


def export_step(graph: StepGraph, path: Path) -> list[str]:
    """Write step.onnx (dynamic batch); returns the file names written."""
    dim = graph.model.config.feature_dim
    example = (
        torch.zeros(2, dim),
        torch.zeros(2, *graph.ring_shape()),
        torch.zeros(2, graph.stream.window - 1, dtype=torch.long),
    )
    batch = torch.export.Dim("batch")
    dims = {name: {0: batch} for name in STEP_INPUTS}
    return save_onnx(graph, example, path, list(STEP_OUTPUTS), dims)


def step_section(
    graph: StepGraph, files: list[str], path: Path, prefill: PrefillSection | None = None
) -> StepSection:
    """The package manifest's "step": what runtime/stepping.py needs to know."""
    cfg = graph.model.config
    layers, _, kv_heads, ring, head_dim = graph.ring_shape()
    return StepSection(
        file=path.name,
        files=tuple(files),
        opset=OPSET,
        window=graph.stream.window,
        layers=layers,
        kv_heads=kv_heads,
        head_dim=head_dim,
        # a frame's label depends on the last layers * (W-1) + 1 frames: replaying that many
        # feature rows from an empty ring rebuilds a stream's rings exactly
        reach=layers * (graph.stream.window - 1) + 1,
        inputs={
            "features": TensorSpec(("batch", cfg.feature_dim), "float32"),
            "ring": TensorSpec(("batch", layers, 2, kv_heads, ring, head_dim), "float32"),
            "ring_mask": TensorSpec(("batch", ring), "int64"),
        },
        outputs={
            "logits": TensorSpec(("batch", cfg.num_classes), "float32"),
            "rows": TensorSpec(("batch", layers, 2, kv_heads, head_dim), "float32"),
        },
        prefill=prefill,
    )


def verify_step(
    path: Path,
    features: np.ndarray,
    reference: np.ndarray,
    ring_shape: tuple[int, ...],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    prefill: Path | None = None,
) -> Verify:
    """Run the step loop in onnxruntime over `features` [B, N, D] (streams from their
    start, batched) and compare every frame's logits with PyTorch's banded pass
    `reference` [B, N, C]; with `prefill`, also each stream through prefill.onnx in
    uneven chunks (its rings carried between them); raise above `tolerance`."""
    from runtime.stepping import StepEngine  # the serving loop itself, not a copy of it

    engine = StepEngine.open(path, ring_shape=ring_shape, providers=("cpu",))
    streams = [engine.new_state() for _ in range(len(features))]
    got = np.stack([engine.step(features[:, t], streams) for t in range(features.shape[1])], axis=1)
    # batch independence (and a batch dimension left dynamic): the first stream alone
    alone = engine.replay(features[0])[1]
    diff = max(float(np.abs(got - reference).max()), float(np.abs(alone - reference[0]).max()))
    if prefill is not None:  # from empty (front-padded), and continued after 3 steps
        engine.open_prefill(prefill)
        for stream, want in zip(features, reference, strict=True):
            diff = max(diff, float(np.abs(engine.replay(stream)[1] - want).max()))
            state, head = engine.replay(stream[:3])
            rest = engine.run(stream[3:], state)
            diff = max(diff, float(np.abs(np.concatenate([head, rest]) - want).max()))
    result = Verify(
        max_abs_diff=diff,
        tolerance=tolerance,
        streams=int(features.shape[0]),
        frames=int(features.shape[1]),
        argmax_agreement=float((got.argmax(-1) == reference.argmax(-1)).mean()),
        provider="CPUExecutionProvider",
        prefill=prefill is not None,
    )
    if not diff <= tolerance:
        raise CheckpointError(
            f"{path.name} differs from PyTorch by {diff:.3g} (tolerance {tolerance:g}) over "
            f"{features.shape[1]} steps: the export is wrong, not published"
        )
    return result
