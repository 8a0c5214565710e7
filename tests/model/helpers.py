"""Small builders shared by the model tests (tiny backbone, random features)."""

from __future__ import annotations

from pathlib import Path

import torch

from model.backbone import SMOLLM2, build_tiny_backbone, resolve_backbone
from model.config import LoraSettings, ModelConfig
from model.gad import GADClassifier

FEATURE_DIM = 16
NAMES = ("background", "open drawer", "close drawer", "open door", "close door", "open")


def tiny_config(kind: str = "gad", **overrides: object) -> ModelConfig:
    values: dict[str, object] = {
        "backbone": "tiny",
        "kind": kind,
        "feature_dim": FEATURE_DIM,
        "class_names": NAMES,
        "lora": LoraSettings(rank=8, alpha=16, dropout=0.0),
        "long_frames": 4,
        "short_frames": 4,
    }
    values.update(overrides)
    return ModelConfig(**values)  # type: ignore[arg-type]


def tiny_model(kind: str = "gad", seed: int = 0, **overrides: object) -> GADClassifier:
    torch.manual_seed(seed)
    return GADClassifier(tiny_config(kind, **overrides), build_tiny_backbone())


def smol_model(cache_dir: Path, kind: str = "gad") -> GADClassifier:
    """A GAD classifier on the real SmolLM2-135M (32-d features, LoRA r=4), seeded."""
    torch.manual_seed(0)
    config = ModelConfig(
        backbone=SMOLLM2,
        kind=kind,  # type: ignore[arg-type]
        feature_dim=32,
        class_names=NAMES,
        lora=LoraSettings(rank=4, alpha=8, dropout=0.0),
    )
    return GADClassifier(config, resolve_backbone(SMOLLM2, cache_dir=cache_dir))


def random_batch(batch: int = 6, steps: int = 5, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(batch, steps, FEATURE_DIM, generator=gen)
    labels = torch.arange(batch) % len(NAMES)
    previous = (labels - 1).clamp(min=-1)
    return features, labels, previous


def train_steps(model: GADClassifier, steps: int, lr: float = 3e-3) -> list[float]:
    features, labels, previous = random_batch()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(features, None, labels, previous).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return losses


def tiny_streaming_model(window: int = 6, seed: int = 0) -> GADClassifier:
    """A discriminative tiny model with streaming attention (window W), briefly trained so
    its LoRA adapters matter (B starts at zero)."""
    from model.streaming.objective import StreamingObjective

    model = tiny_model("discriminative", seed, attention="streaming", stream_window=window)
    objective = StreamingObjective(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=3e-3)
    gen = torch.Generator().manual_seed(seed + 1)
    for _ in range(3):
        features = torch.randn(2, 30, FEATURE_DIM, generator=gen)
        labels = torch.randint(0, len(NAMES), (2, 30), generator=gen)
        objective(features, torch.ones(2, 30), labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()
