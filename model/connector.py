"""Frame features → LLM token embeddings, and [CLS] hidden state → class logits."""

from __future__ import annotations

import torch
from torch import nn


class Connector(nn.Module):
    """Linear(D→H) → GELU → Linear(H→H): one LLM token per feature row."""

    def __init__(self, feature_dim: int, hidden_size: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(feature_dim, hidden_size)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_size, hidden_size)

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # [B, T, D] → [B, T, H]
        return self.fc2(self.act(self.fc1(features)))


class ClsHead(nn.Module):
    """Linear(H→C) on the final (post-norm) hidden state at [CLS]. Returns logits."""

    def __init__(self, hidden_size: int, num_classes: int) -> None:
        super().__init__()
        self.proj = nn.Linear(hidden_size, num_classes)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # [B, H] → [B, C]
        return self.proj(hidden)
