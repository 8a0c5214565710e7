"""Frame features → LLM token embeddings, and [CLS] hidden state → class logits."""

from __future__ import annotations

import torch
from torch import nn

from model.config import FRAME_TOKENS, FrameTokens
from runtime.errors import ConfigError


class Connector(nn.Module):
    """Linear(D→H) → GELU → Linear(H→H): one LLM token per feature row.

    The clip model may read a row as `tokens` k > 1 tokens, in one of two layouts:
      expand  Linear(D→H) → GELU → Linear(H→k·H), the output cut into k tokens;
      split   the row is k token features of D/k each, concatenated (a frame's image
              [CLS] and its pooled patches, as the authors feed COIN), each through the
              shared Linear(D/k→H) → GELU → Linear(H→H).
    `separator` [S, H] (token embeddings, e.g. the "," the authors join COIN frames with)
    goes between consecutive rows. [B, T, D] → [B, T·k + (T-1)·S, H]; `token_mask` maps
    the rows' mask [B, T] onto those tokens. k = 1 without a separator is the plain path.
    """

    def __init__(
        self,
        feature_dim: int,
        hidden_size: int,
        *,
        tokens: int = 1,
        layout: FrameTokens = "expand",
        separator: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if tokens < 1 or layout not in FRAME_TOKENS:
            raise ConfigError(f"need tokens >= 1 and a layout in {FRAME_TOKENS}, got {tokens}")
        if layout == "split" and feature_dim % tokens:
            raise ConfigError(f"a {feature_dim}-d row does not split into {tokens} tokens")
        self.tokens, self.layout, self.hidden_size = tokens, layout, hidden_size
        split = layout == "split"
        self.fc1 = nn.Linear(feature_dim // tokens if split else feature_dim, hidden_size)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_size, hidden_size if split else tokens * hidden_size)
        # The separator is frozen text (the LM's own embeddings): rebuilt from the
        # backbone at load, never trained, so it is not saved with the connector.
        sep = torch.zeros(0, hidden_size) if separator is None else separator.detach().float()
        if sep.dim() != 2 or sep.shape[1] != hidden_size:
            raise ConfigError(f"separator must be [S, {hidden_size}], got {list(sep.shape)}")
        self.register_buffer("separator", sep.clone(), persistent=False)

    @property
    def per_row(self) -> int:
        """Tokens a row takes in the sequence, its separator included."""
        return self.tokens + len(self.separator)

    @property
    def one_token_per_row(self) -> bool:
        return self.per_row == 1

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # [B, T, D] → [B, T', H]
        if self.one_token_per_row:
            return self.fc2(self.act(self.fc1(features)))
        if self.layout == "split":
            features = features.unflatten(-1, (self.tokens, -1))  # [B, T, k, D/k]
        tokens = self.fc2(self.act(self.fc1(features)))
        tokens = tokens.reshape(*features.shape[:2], self.tokens, self.hidden_size)
        if len(self.separator):
            sep = self.separator.to(tokens.dtype).expand(*tokens.shape[:2], -1, -1)
            tokens = torch.cat([tokens, sep], dim=2)  # [B, T, k + S, H]
        return self._drop_last_separator(tokens.flatten(1, 2))

    def token_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """The rows' mask [B, T] → the tokens' [B, T'] (a row's tokens and the separator
        after it share its mask: padding rows stay out of attention and positions)."""
        if self.one_token_per_row:
            return mask
        expanded = mask[:, :, None].expand(-1, -1, self.per_row).flatten(1)
        return self._drop_last_separator(expanded)

    def _drop_last_separator(self, tokens: torch.Tensor) -> torch.Tensor:
        # Separators go between rows: none after the last (the frames read "f,f,f").
        s = len(self.separator)
        return tokens[:, : tokens.shape[1] - s] if s else tokens


class ClsHead(nn.Module):
    """Linear(H→C) on the final (post-norm) hidden state at [CLS]. Returns logits."""

    def __init__(self, hidden_size: int, num_classes: int) -> None:
        super().__init__()
        self.proj = nn.Linear(hidden_size, num_classes)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # [B, H] → [B, C]
        return self.proj(hidden)
