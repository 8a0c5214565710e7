"""`--device auto`: CUDA when torch sees a GPU, else the CPU."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> str:
    """`auto` → "cuda" or "cpu"; any other name (cpu, cuda, cuda:1) as given."""
    return name if name != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
