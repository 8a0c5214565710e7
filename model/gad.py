"""The GAD classifier: a causal LM over frame tokens, with three ways to classify.

  generative      greedy-decode the label text after "\\nAssistant:" (optionally
                  constrained to the label set by a prefix trie), map it to a class;
                  trained on "\\nAssistant: {label}<eos>".
  discriminative  a learnable [CLS] embedding after the last frame; Linear(H→C) on its
                  final hidden state; weighted cross-entropy.
  gad             discriminative inference; training adds λ·LM loss on
                  "\\nAssistant: {label}[, {previous}]<eos>" placed after [CLS], so the
                  generated tokens read — and shape — the [CLS] state.

The config's `targets` (model/config.py TargetRules) set the details as the authors'
code has them: the LM loss covers "\\nAssistant:" too (the [CLS] position predicts the
newline), and the background answer " background" has no <eos> unless a previous action
follows.

`class_logits(features, mask)` is the one-pass path that is exported and served.
Windows are left-padded: `mask[b, t]` is 1 for real frames; padded and unpadded windows
give the same logits because padding is masked out and position ids skip it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPast

from model.backbone import Backbone
from model.config import ModelConfig
from model.connector import ClsHead, Connector
from model.generative import GenerativePaths
from model.lora import apply_lora, base_model
from model.prompt import PromptTokens
from runtime.errors import ConfigError


@dataclass
class GADOutput:
    loss: torch.Tensor
    logits: torch.Tensor | None  # [B, C] class logits; None for `generative`
    cls_loss: torch.Tensor | None
    lm_loss: torch.Tensor | None


class GADClassifier(GenerativePaths, nn.Module):
    def __init__(self, config: ModelConfig, backbone: Backbone) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone  # plain attribute: its model is `self.lm`'s base
        self.tokenizer = backbone.tokenizer
        self.prompt = PromptTokens.build(backbone.tokenizer, config)
        self.trie = self.prompt.trie(with_previous=config.kind != "generative")
        self.lm = apply_lora(backbone.model, config.lora, kind=config.kind)
        hidden = backbone.hidden_size
        self.connector = Connector(config.feature_dim, hidden)
        self.cls_embedding: nn.Parameter | None = None
        self.head: ClsHead | None = None
        if config.uses_cls:
            std = float(self._embed_tokens.weight.float().std())
            self.cls_embedding = nn.Parameter(torch.randn(hidden) * std)
            self.head = ClsHead(hidden, config.num_classes)
        self.register_buffer("prefix_ids", torch.tensor(self.prompt.prefix), persistent=False)
        self.register_buffer("assistant_ids", torch.tensor(self.prompt.assistant), persistent=False)
        # The question prefix's embeddings, frozen by `freeze_prefix()` for export: the
        # exported graph then holds [P, H] constants instead of the whole embedding table.
        self.frozen_prefix: torch.Tensor | None = None

    # --- pieces of the backbone --------------------------------------------------------

    @property
    def _embed_tokens(self) -> nn.Module:
        return base_model(self.lm).get_input_embeddings()

    @property
    def _lm_head(self) -> nn.Module:
        return base_model(self.lm).get_output_embeddings()

    @property
    def lm_dtype(self) -> torch.dtype:
        """The backbone's dtype (its embedding table's): what its decoder layers compute in."""
        return self._embed_tokens.weight.dtype

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """The backbone's input embeddings of token ids [..., S] → [..., S, H]."""
        return self._embed_tokens(ids)

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The backbone's LM head: next-token logits [..., V] of final hidden states [..., H]."""
        return self._lm_head(hidden)

    def _decoder(
        self,
        embeds: torch.Tensor,
        attention: torch.Tensor,
        positions: torch.Tensor,
        past: object | None = None,
    ) -> BaseModelOutputWithPast:
        return base_model(self.lm).get_decoder()(
            inputs_embeds=embeds,
            attention_mask=attention,
            position_ids=positions,
            cache=past,
            use_cache=past is not None,
        )

    # --- sequence building -------------------------------------------------------------

    def _sequence(
        self,
        features: torch.Tensor,
        mask: torch.Tensor | None,
        *,
        tail_ids: torch.Tensor | None = None,
        tail_mask: torch.Tensor | None = None,
        with_cls: bool,
        prefix: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings [B, S, H] and attention mask [B, S] of prefix | frames | CLS | tail.

        `prefix` (embeddings [B, P, H], mask [B, P]) replaces the question prefix: the
        clip model asks a different question per sample."""
        if features.dim() != 3 or features.shape[-1] != self.config.feature_dim:
            raise ConfigError(
                f"features must be [batch, time, {self.config.feature_dim}], "
                f"got {list(features.shape)}"
            )
        batch, steps, _ = features.shape
        if mask is None:
            mask = torch.ones(batch, steps, dtype=torch.long, device=features.device)
        elif mask.shape != (batch, steps):
            raise ConfigError(f"mask must be [{batch}, {steps}], got {list(mask.shape)}")
        dtype = self.lm_dtype
        embed = self._embed_tokens
        if prefix is None:
            prefix = (
                self.prefix_embeds().unsqueeze(0).expand(batch, -1, -1),
                self.prefix_ids.new_ones(batch, len(self.prefix_ids)),
            )
        parts = [prefix[0].to(dtype), self.connector(features.float()).to(dtype)]
        masks = [prefix[1].long(), mask.long()]
        if with_cls:
            assert self.cls_embedding is not None
            parts.append(self.cls_embedding.to(dtype).expand(batch, 1, -1))
            masks.append(masks[1].new_ones(batch, 1))
        if tail_ids is not None:
            parts.append(embed(tail_ids))
            masks.append(tail_mask.long() if tail_mask is not None else torch.ones_like(tail_ids))
        return torch.cat(parts, dim=1), torch.cat(masks, dim=1)

    def prefix_embeds(self) -> torch.Tensor:
        """The question prefix's embeddings [P, H] (frozen by `freeze_prefix()` for export)."""
        if self.frozen_prefix is not None:
            return self.frozen_prefix
        return self._embed_tokens(self.prefix_ids)

    def freeze_prefix(self) -> None:
        """Embed the (constant) question prefix once; the embedding table is frozen anyway."""
        with torch.no_grad():
            self.frozen_prefix = self._embed_tokens(self.prefix_ids).detach().clone()

    @staticmethod
    def _positions(attention: torch.Tensor) -> torch.Tensor:
        # Padding takes no position: the first real token is 0 wherever padding sits.
        return (attention.cumsum(-1) - 1).clamp(min=0)

    def _answers(
        self, labels: torch.Tensor, previous: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """LM targets: GAD learns "{label}[, {previous}]<eos>"; the generative classifier,
        as the authors train it, "{label}<eos>" only."""
        if self.config.kind == "generative":
            previous = None
        rows = [
            self.prompt.answer(int(label), None if previous is None else int(previous[i]))
            for i, label in enumerate(labels)
        ]
        return self._pad_answers(rows, labels.device)

    def _pad_answers(
        self, rows: list[list[int]], device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Answer ids [B, A] right-padded with <eos>, and which of them are real [B, A]."""
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), self.prompt.eos, dtype=torch.long)
        valid = torch.zeros(len(rows), width, dtype=torch.bool)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            valid[i, : len(row)] = True
        return ids.to(device), valid.to(device)

    # --- the three paths -----------------------------------------------------------------

    def class_logits(
        self, features: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Class logits [B, C] for a batch of windows in one forward pass, no decoding."""
        if self.head is None:
            raise ConfigError("a generative classifier has no [CLS] head: use generate()")
        return self.head(self._cls_hidden(features, mask))

    def _cls_hidden(
        self,
        features: torch.Tensor,
        mask: torch.Tensor | None,
        prefix: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The final hidden state at [CLS], [B, H] float32: what the heads read."""
        embeds, attention = self._sequence(features, mask, with_cls=True, prefix=prefix)
        hidden = self._decoder(embeds, attention, self._positions(attention)).last_hidden_state
        return hidden[:, -1].float()

    def _generative_pass(
        self,
        features: torch.Tensor,
        mask: torch.Tensor | None,
        answers: tuple[torch.Tensor, torch.Tensor],
        prefix: tuple[torch.Tensor, torch.Tensor] | None = None,
        extra: tuple[int, torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """One pass over prompt | frames | [CLS] | "\nAssistant:" answer: (the [CLS] hidden
        state [B, H] or None without [CLS], the LM loss).

        The LM loss is the mean over its target tokens, each predicted by the hidden state
        before it: the answer's, and with `targets.lm_on_prompt` also "\\nAssistant:"'s
        (the first predicted by [CLS], or by the last frame without it). `extra` — the
        sequence position where a block starts, its token ids [B, N] and which of them
        are targets [B, N] (the clip model's row separators) — adds targets inside the
        frames to the same mean."""
        ids, valid = answers
        batch = ids.shape[0]
        assistant = self.assistant_ids.expand(batch, -1)
        tail = torch.cat([assistant, ids], dim=1)
        tail_mask = torch.cat([torch.ones_like(assistant, dtype=torch.bool), valid], dim=1)
        embeds, attention = self._sequence(
            features,
            mask,
            tail_ids=tail,
            tail_mask=tail_mask,
            with_cls=self.config.uses_cls,
            prefix=prefix,
        )
        hidden = self._decoder(embeds, attention, self._positions(attention)).last_hidden_state
        first_answer = embeds.shape[1] - ids.shape[1]
        answer_targets = ids.masked_fill(~valid, -100)
        if self.config.targets.lm_on_prompt:
            first_target = first_answer - assistant.shape[1]
            targets = torch.cat([assistant, answer_targets], dim=1)
        else:
            first_target, targets = first_answer, answer_targets
        # The hidden state before each target token predicts it.
        predictors = hidden[:, first_target - 1 : -1]
        if extra is not None:
            start, extra_ids, extra_keep = extra
            block = hidden[:, start - 1 : start - 1 + extra_ids.shape[1]]
            predictors = torch.cat([block[extra_keep], predictors.flatten(0, 1)])
            targets = torch.cat([extra_ids[extra_keep], targets.flatten()])
        lm_logits = self._lm_head(predictors).float()
        lm_loss = F.cross_entropy(
            lm_logits.reshape(-1, lm_logits.shape[-1]), targets.reshape(-1), ignore_index=-100
        )
        if not self.config.uses_cls:
            return None, lm_loss
        cls_index = first_answer - assistant.shape[1] - 1
        return hidden[:, cls_index].float(), lm_loss

    def forward(
        self,
        features: torch.Tensor,
        mask: torch.Tensor | None,
        labels: torch.Tensor,
        previous: torch.Tensor | None = None,
    ) -> GADOutput:
        """Training loss for windows [B, T, D] whose last frame has class `labels` [B].

        `previous` [B] is the previous action's class (-1: none), used in GAD's LM target
        (the generative classifier's target is the label alone).
        """
        cfg = self.config
        if labels.min() < 0 or labels.max() >= cfg.num_classes:
            raise ConfigError(f"labels must lie in 0..{cfg.num_classes - 1}, got {labels.tolist()}")
        if cfg.kind == "discriminative":
            logits = self.class_logits(features, mask)
            cls_loss = self._cls_loss(logits, labels)
            return GADOutput(loss=cls_loss, logits=logits, cls_loss=cls_loss, lm_loss=None)
        cls_hidden, lm_loss = self._generative_pass(features, mask, self._answers(labels, previous))
        if cls_hidden is None:
            return GADOutput(loss=lm_loss, logits=None, cls_loss=None, lm_loss=lm_loss)
        assert self.head is not None
        logits = self.head(cls_hidden)
        cls_loss = self._cls_loss(logits, labels)
        loss = cls_loss + cfg.lm_weight * lm_loss
        return GADOutput(loss=loss, logits=logits, cls_loss=cls_loss, lm_loss=lm_loss)

    def _cls_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy, background samples weighted by `background_weight` (mean over B)."""
        per_sample = F.cross_entropy(logits, labels, reduction="none")
        bg = self.config.background_index
        if bg is not None and self.config.background_weight != 1.0:
            weight = torch.where(labels == bg, self.config.background_weight, 1.0)
            per_sample = per_sample * weight
        return per_sample.mean()


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts."""
    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return total, trainable
