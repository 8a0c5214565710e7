"""StreamingGAD: the streaming passes of a GAD classifier (model/streaming/__init__.py),
and BatchKVRings, the K/V rings of a batch of streams that the step advances.

Every pass runs transformers' decoder with `gad_streaming` selected and a `StreamPass`
(kernel.py) of its `PassMode`: PROMPT once per model, TRAIN over sequences from their
start (every frame supervised), PREFILL over N frames continuing rings (what prefill.onnx
computes), STEP for one frame (what step.onnx computes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from model.gad import GADClassifier
from model.lora import base_model
from model.streaming.kernel import KV, PassMode, StreamPass, streaming_selected
from runtime.errors import ConfigError


class StreamingGAD:
    """The streaming passes of a GAD classifier with window W (frames seen per frame)."""

    def __init__(self, model: GADClassifier, window: int) -> None:
        if window < 1:
            raise ConfigError(f"the streaming window must be at least 1 frame, got {window}")
        if model.head is None or model.cls_embedding is None:
            raise ConfigError("streaming needs a [CLS] head (discriminative or gad)")
        self.model, self.window = model, window
        self.prompt = len(model.prefix_ids)
        positions = torch.arange(self.prompt + window + 1, device=model.prefix_ids.device)
        probe = torch.zeros(1, 1, dtype=model.lm_dtype, device=positions.device)
        cos, sin = self._decoder().rotary_emb(probe, positions[None])
        self.cos, self.sin = cos[0].float(), sin[0].float()

    def _decoder(self) -> Any:
        return base_model(self.model.lm).get_decoder()

    def _pass(self, mode: PassMode, **extra: Any) -> StreamPass:
        return StreamPass(mode, self.prompt, self.window, self.cos, self.sin, **extra)

    def _run(self, embeds: torch.Tensor, ctx: StreamPass) -> torch.Tensor:
        """The decoder's final hidden states [B, S, H] of `embeds` in the pass `ctx`."""
        zeros = torch.zeros(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        with streaming_selected(self._decoder()) as decoder:
            out = decoder(inputs_embeds=embeds, position_ids=zeros, use_cache=False, gad_stream=ctx)
        return out.last_hidden_state

    def _frame_embeds(self, features: torch.Tensor) -> torch.Tensor:
        """N frame tokens | N [CLS] tokens [B, 2N, H] of features [B, N, D]."""
        model = self.model
        batch, n, _ = features.shape
        dtype = model.lm_dtype
        assert model.cls_embedding is not None
        return torch.cat(
            [
                model.connector(features.float()).to(dtype),
                model.cls_embedding.to(dtype).reshape(1, 1, -1).expand(batch, n, -1),
            ],
            dim=1,
        )

    def prompt_state(self) -> KV:
        """Each layer's rotated prompt K/V [1, kvH, P, d]: computed once per model."""
        ctx = self._pass(PassMode.PROMPT)
        self._run(self.model.prefix_embeds().unsqueeze(0), ctx)
        return ctx.prompt_kv

    def frame_logits(
        self, features: torch.Tensor, frame_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Class logits [B, N, C] for every frame of sequences features [B, N, D] that start
        their streams (training: one pass supervises all N frames)."""
        assert self.model.head is not None
        cls, _ = self.frame_pass(features, frame_mask)
        return self.model.head(cls.float())

    def frame_pass(
        self,
        features: torch.Tensor,
        frame_mask: torch.Tensor | None = None,
        tail_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Final hidden states of every frame's [CLS], [B, N, H], and — given each frame's
        label-text token ids `tail_ids` [B, N, A] — of those tokens, [B, N, A, H]. The
        [CLS] states do not depend on the tail (nothing but the tail reads it)."""
        batch, n, _ = features.shape
        dtype = self.model.lm_dtype
        embeds = self._frame_embeds(features)
        tail = 0 if tail_ids is None else tail_ids.shape[-1]
        if tail_ids is not None:
            embeds = torch.cat([embeds, self.model.embed(tail_ids.flatten(1)).to(dtype)], dim=1)
        ctx = self._pass(
            PassMode.TRAIN, frame_mask=frame_mask, prompt_kv=self.prompt_state(), tail=tail
        )
        if tail:
            slots = torch.arange(tail, device=features.device) + self.prompt + self.window + 1
            probe = torch.zeros(1, 1, dtype=dtype, device=features.device)
            cos, sin = self._decoder().rotary_emb(probe, slots[None])
            ctx.tail_cos, ctx.tail_sin = cos[0].float(), sin[0].float()
        hidden = self._run(embeds, ctx)
        tail_hidden = hidden[:, 2 * n :].reshape(batch, n, tail, -1) if tail else None
        return hidden[:, n : 2 * n], tail_hidden

    def prefill_rows(
        self,
        features: torch.Tensor,
        prompt_kv: KV,
        rings: KV,
        mask: torch.Tensor,
        frame_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, KV, torch.Tensor]:
        """N steps in one banded pass (what prefill.onnx computes): the logits [B, N, C] of
        frames features [B, N, D] that continue streams held in `rings` / `mask` (as for
        `step_rows`), and the rings and mask after them. Equal to N calls of `step_rows`.
        `frame_mask` [B, N] marks real frames: padding at the front of a stream that starts
        empty is never read, so a stream can be padded to a whole number of chunks."""
        assert self.model.head is not None
        batch, n, _ = features.shape
        embeds = self._frame_embeds(features)
        ctx = self._pass(
            PassMode.PREFILL,
            prompt_kv=prompt_kv,
            ring_kv=rings,
            ring_mask=mask,
            frame_mask=frame_mask,
        )
        hidden = self._run(embeds, ctx)
        real = mask.new_ones(batch, n) if frame_mask is None else frame_mask.to(mask.dtype)
        new_mask = torch.cat([mask, real], dim=1)[:, n:]
        return self.model.head(hidden[:, n : 2 * n].float()), ctx.new_kv, new_mask

    def stream_logits(self, features: torch.Tensor, chunk: int = 512) -> torch.Tensor:
        """Logits [B, N, C] of whole streams features [B, N, D] from their start, in
        banded passes of `chunk` frames that carry the rings (memory O(chunk · W) per
        layer however long the video; equal to one pass and to the step loop)."""
        state = self.start(features.shape[0])
        rings, mask, out = state.rings, state.mask, []
        for at in range(0, features.shape[1], chunk):
            logits, rings, mask = self.prefill_rows(
                features[:, at : at + chunk], state.prompt_kv, rings, mask
            )
            out.append(logits)
        return torch.cat(out, dim=1)

    def start(self, batch: int) -> BatchKVRings:
        """Empty rings for `batch` streams (and the prompt's K/V)."""
        prompt_kv = self.prompt_state()
        rings = {
            layer: (k.new_zeros(batch, k.shape[1], self.window - 1, k.shape[-1]),) * 2
            for layer, (k, _) in prompt_kv.items()
        }
        device = self.model.prefix_ids.device
        mask = torch.zeros(batch, self.window - 1, dtype=torch.bool, device=device)
        return BatchKVRings(prompt_kv, rings, mask)

    def step(self, features: torch.Tensor, state: BatchKVRings) -> torch.Tensor:
        """Logits [B, C] for one new frame per stream (features [B, D]); `state` advances."""
        logits, rows = self.step_rows(features, state.prompt_kv, state.rings, state.mask)
        state.push(rows)
        return logits

    def step_rows(
        self, features: torch.Tensor, prompt_kv: KV, rings: KV, mask: torch.Tensor
    ) -> tuple[torch.Tensor, KV]:
        """One step as a pure function (what step.onnx computes): logits [B, C] and each
        layer's new pre-RoPE K/V row ([B, kvH, 1, d] each) for features [B, D], given the
        rings ([B, kvH, W-1, d], oldest first) and their validity `mask` [B, W-1]."""
        assert self.model.head is not None
        embeds = self._frame_embeds(features[:, None])
        ctx = self._pass(PassMode.STEP, prompt_kv=prompt_kv, ring_kv=rings, ring_mask=mask)
        hidden = self._run(embeds, ctx)
        return self.model.head(hidden[:, 1].float()), ctx.new_kv


@dataclass
class BatchKVRings:
    """The K/V rings of a batch of streams: per layer the last W-1 frames' pre-RoPE K/V
    (oldest first) and their validity, with the prompt's K/V (the same for every stream)."""

    prompt_kv: KV
    rings: KV
    mask: torch.Tensor  # [B, W-1]

    def push(self, rows: KV) -> None:
        """Append each layer's newest K/V row [B, kvH, 1, d]; the oldest falls out."""
        if self.mask.shape[1] == 0:
            return
        for layer, (k, v) in rows.items():
            ring_k, ring_v = self.rings[layer]
            self.rings[layer] = (
                torch.cat([ring_k[:, :, 1:], k], dim=2),
                torch.cat([ring_v[:, :, 1:], v], dim=2),
            )
        self.mask = torch.cat([self.mask[:, 1:], self.mask.new_ones(len(self.mask), 1)], dim=1)
