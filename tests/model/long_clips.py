"""A tiny clip model of the paper's COIN shape — clips of up to 1,200 rows at 2 fps, k
tokens per row with "," between rows — trained a few steps and exported as a clip-only
package (clip.onnx): shared by the long-clip training and /classify tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from model.checkpoint import save_checkpoint
from model.clip import ClipClassifier
from model.export.package import export_package
from tests.model.test_clip import clip_model, train

LONG_ROWS = 1200  # the authors' max_num_frames: 10 min at 2 fps
FPS = 2.0


def long_clip_model(tokens: int = 2, steps: int = 3, **overrides: object) -> ClipClassifier:
    """Trained a few steps on short clips (the batch is as long as its longest clip)."""
    model = clip_model(clip_frames=LONG_ROWS, tokens_per_frame=tokens, **overrides)
    train(model, steps)
    return model.eval()


def long_clip_package(folder: Path, model: ClipClassifier, rows: np.ndarray | None = None) -> Path:
    """`model` saved and exported as a clip-only package under `folder`; clip.onnx is
    verified against PyTorch on clips of up to LONG_ROWS rows (of `rows` when given)."""
    save_checkpoint(model, folder / "ckpt", extra={"data": {"fps": FPS}})
    result = export_package(folder / "ckpt", folder / "models", name="coin", clip_probe_rows=rows)
    return result.folder


def torch_scores(model: ClipClassifier, rows: np.ndarray, size: int) -> list[np.ndarray]:
    """PyTorch's step, task and next-step probabilities of `rows` read as one clip of
    `size` rows (runtime.windowing.build_clip)."""
    from runtime.windowing import build_clip

    clip, mask = build_clip(rows, size)
    with torch.no_grad():
        logits = model.clip_logits(
            torch.from_numpy(clip[None]), torch.from_numpy(mask[None]).long()
        )
    return [torch.softmax(x, -1)[0].numpy() for x in logits]
