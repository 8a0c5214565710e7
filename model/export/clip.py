"""A clip model in the package: `clip.onnx` beside the per-frame head.

    clip.onnx   features [batch, time, D] float32 + mask [batch, time] int64 (left-padded)
                → step_logits [batch, S], task_logits [batch, K], next_logits [batch, S]

The graph is `ClipClassifier.clip_logits`: the three questions asked of each clip in one
batched pass, LoRA merged, question prefixes embedded once. It reads the same rows as the
head (same features, fps and encoder), so a package gains it only when they agree.
`time` is dynamic (2 … any): a clip of fewer rows than `max_frames` (up to the paper's
1,200 at 2 fps) needs no padding; k tokens per row and the separator live inside the graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from model.checkpoint import load_checkpoint
from model.checkpoint_info import CheckpointInfo, read_checkpoint_info
from model.clip import ClipClassifier
from model.export.graph import export_graph, prepare_for_export, verify_graph
from runtime.errors import CheckpointError
from runtime.manifest import CLIP_FILE, ClipSection, TensorSpec
from runtime.windowing import build_clip

OUTPUTS = ["step_logits", "task_logits", "next_logits"]
EXAMPLE_ROWS = 16  # the export traces at this many rows; `time` stays dynamic
# Verification clips hold at most this many frame tokens (rows × tokens per row): the
# graph answers three questions per clip with full attention matrices, so three probes
# of 1,200 rows × 5 tokens would take tens of GB. The graph is the same at any length.
PROBE_FRAME_TOKENS = 2400


class ClipGraph(nn.Module):
    def __init__(self, model: ClipClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, features: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.model.clip_logits(features, mask)


def check_clip_fits(frame: CheckpointInfo, clip: CheckpointInfo, clip_path: Path) -> None:
    """Refuse a clip checkpoint that cannot read the rows the package's head reads."""
    if not clip.config.is_clip:
        raise CheckpointError(f"{clip_path} is a per-frame model, not a clip model")
    if not clip.config.uses_cls:
        raise CheckpointError(
            f"{clip_path} is a generative clip model: it answers by decoding, so it has no "
            "one-pass graph to export; export a discriminative or gad clip model"
        )
    if clip.config.feature_dim != frame.config.feature_dim:
        raise CheckpointError(
            f"{clip_path} reads {clip.config.feature_dim}-d features, the per-frame model "
            f"{frame.config.feature_dim}-d: they must be trained on the same features"
        )
    frame_data, clip_data = frame.extra.get("data") or {}, clip.extra.get("data") or {}
    if float(frame_data.get("fps", 4.0)) != float(clip_data.get("fps", 4.0)):
        raise CheckpointError(
            f"{clip_path} was trained at {clip_data.get('fps')} fps, the per-frame model at "
            f"{frame_data.get('fps')} fps"
        )
    frame_encoder = (frame_data.get("encoder") or {}).get("spec")
    clip_encoder = (clip_data.get("encoder") or {}).get("spec")
    if frame_encoder != clip_encoder:
        raise CheckpointError(
            f"{clip_path} was trained on features of encoder {clip_encoder!r}, the per-frame "
            f"model on {frame_encoder!r}"
        )


def probe_clips(
    model: ClipClassifier, *, rows: np.ndarray | None = None, batch: int = 3, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips to compare ONNX with PyTorch on: spans of real feature `rows` (one video,
    e.g. `training.probes.clip_probe_rows`) when given — a short span first, so padding is
    exercised — else random rows; at most PROBE_FRAME_TOKENS frame tokens a clip."""
    per_row = model.connector.per_row
    size = max(2, min(model.config.clip_frames, PROBE_FRAME_TOKENS // per_row))
    dim = model.config.feature_dim
    if rows is None:
        gen = np.random.default_rng(seed)
        rows = gen.normal(size=(3 * size, dim)).astype(np.float32)
    rows = np.asarray(rows, dtype=np.float32)
    ends = np.linspace(max(2, len(rows) // batch), len(rows), batch).astype(int)
    ends[0] = min(len(rows), max(2, size // 2))  # fewer rows than clip_frames: padded
    pairs = [build_clip(rows, size, end=int(end)) for end in ends]
    features = torch.from_numpy(np.stack([p[0] for p in pairs]))
    return features, torch.from_numpy(np.stack([p[1] for p in pairs])).long()


def export_clip(
    checkpoint: Path,
    folder: Path,
    frame: CheckpointInfo,
    *,
    verify: bool,
    tolerance: float,
    rows: np.ndarray | None = None,
    backbone: str | None = None,
    metrics: dict[str, Any] | None = None,
) -> ClipSection:
    """Write clip.onnx into `folder`; returns the manifest's "clip" section (its files under
    `files`)."""
    info = read_checkpoint_info(Path(checkpoint))
    check_clip_fits(frame, info, Path(checkpoint))
    model = load_checkpoint(Path(checkpoint), backbone=backbone)
    assert isinstance(model, ClipClassifier)
    probe = probe_clips(model, rows=rows)
    with torch.no_grad():
        reference = {
            name: out.float().numpy()
            for name, out in zip(OUTPUTS, model.clip_logits(*probe), strict=True)
        }
    prepare_for_export(model)
    cfg = model.config
    files = export_graph(
        ClipGraph(model),
        folder / CLIP_FILE,
        OUTPUTS,
        steps=min(cfg.clip_frames, EXAMPLE_ROWS),
        feature_dim=cfg.feature_dim,
    )
    verified = None
    if verify:
        verified = verify_graph(folder / CLIP_FILE, probe, reference, tolerance=tolerance)
    steps, tasks = len(cfg.class_names), len(cfg.task_names)
    return ClipSection(
        file=CLIP_FILE,
        files=tuple(files),
        kind=cfg.kind,
        steps=tuple(cfg.class_names),
        tasks=tuple(cfg.task_names),
        max_frames=cfg.clip_frames,
        tokens_per_frame=cfg.tokens_per_frame,
        frame_tokens=cfg.frame_tokens,
        frame_separator=cfg.frame_separator,
        questions=tuple(cfg.clip_questions),
        inputs={
            "features": TensorSpec(("batch", "time", cfg.feature_dim), "float32"),
            "mask": TensorSpec(("batch", "time"), "int64"),
        },
        outputs={
            "step_logits": TensorSpec(("batch", steps), "float32"),
            "task_logits": TensorSpec(("batch", tasks), "float32"),
            "next_logits": TensorSpec(("batch", steps), "float32"),
        },
        backbone=info.backbone,
        training=info.extra.get("train"),
        metrics=metrics,
        verify=verified,
    )
