"""Streaming attention: one decoder step per frame against a rolling K/V window, exact to
training.

The windowed model re-reads prompt + L + S frames + [CLS] for every frame. The streaming
model reads each frame once. Per frame t there are two tokens:

    f_t   the frame token: sees the question prompt and the frame tokens f_{t-W+1} … f_t
    c_t   a side [CLS]: sees the prompt, the same W frames and itself; nothing sees it

so a frame's keys and values never change once computed, and serving keeps, per layer, a
ring of the last W frames' K/V (+ the prompt's K/V, the same for every stream).

Positions (RoPE) are fixed slots, not time: the prompt sits at 0 … P-1, the frame j steps
old at P+W-1-j (the newest at P+W-1), [CLS] at P+W. Keys are kept *before* rotation and
rotated at their slot whenever they are read, from one cos/sin table of P+W+1 rows, so the
prompt is at the same offset from every query, a frame's angle never depends on how long
the stream has run, and nothing accumulates (re-rotating cached keys step by step would).
Training computes the same scores for all frames of a long sequence at once (a banded
attention: W shifted key bands), so every frame is supervised and serving is the same
arithmetic in another order.

The decoder layers stay transformers' own (norms, projections with their LoRA adapters,
MLP); only the attention is ours, registered as `gad_streaming` in transformers' attention
interface and selected for the duration of a streaming pass. Position ids are all zero,
so transformers' own rotation is the identity and q/k reach the attention unrotated.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.models.llama.modeling_llama import repeat_kv, rotate_half

from model.gad import GADClassifier, GADOutput
from model.lora import base_model
from runtime.errors import ConfigError

ATTENTION = "gad_streaming"


@dataclass
class StreamPass:
    """What one streaming pass hands to every layer's attention (via the layers' kwargs).

    mode "prompt": the prompt alone, causal; its rotated K/V per layer go to `prompt_kv`.
    mode "train": N frame tokens | N [CLS] tokens against `prompt_kv`, banded;
      `frame_mask` [B, N] marks frames that exist (padding is never read). With `tail`
      A > 0, N·A more tokens follow (frame-major): each frame's label text, which sees
      what its [CLS] sees, the [CLS] and its own earlier tokens; nothing else sees it.
    mode "step": one frame token and its [CLS] against `prompt_kv` and the rings
      (`ring_kv[layer]` = pre-RoPE K, V [B, kvH, W-1, d], oldest first; `ring_mask` [B, W-1]);
      each layer's new pre-RoPE K/V row goes to `new_kv`.
    """

    mode: str
    prompt: int
    window: int
    cos: torch.Tensor  # [P+W+1, d]
    sin: torch.Tensor
    frame_mask: torch.Tensor | None = None
    prompt_kv: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    ring_kv: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    ring_mask: torch.Tensor | None = None
    new_kv: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    tail: int = 0
    tail_cos: torch.Tensor | None = None  # [A, d]: slots P+W+1 … P+W+A
    tail_sin: torch.Tensor | None = None


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x [..., S, d] at the positions whose tables are cos/sin [S, d] (or [d])."""
    return x * cos + rotate_half(x) * sin


def _mix(scores: list[torch.Tensor], values: list[torch.Tensor]) -> torch.Tensor:
    """Softmax over the concatenated score blocks, then each block's weights @ its values.
    A block is (scores [B, H, Q, K], values [B, H, Q, K, d] or [B, H, K, d])."""
    probs = torch.softmax(torch.cat(scores, dim=-1), dim=-1)
    out, start = None, 0
    for block, value in zip(scores, values, strict=True):
        weights = probs[..., start : start + block.shape[-1]]
        start += block.shape[-1]
        part = weights @ value if value.dim() == 4 else (weights.unsqueeze(-1) * value).sum(dim=-2)
        out = part if out is None else out + part
    assert out is not None
    return out


def _bands(
    keys: torch.Tensor, values: torch.Tensor, window: int, cos: torch.Tensor, sin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per frame t the W frames t-j (j = 0 … W-1), keys rotated at slot P+W-1-j:
    ([B, H, N, W, d], [B, H, N, W, d]); rows before the sequence start are zero."""
    n = keys.shape[2]
    bands_k, bands_v = [], []
    for j in range(window):
        k = _rope(keys, cos[-2 - j], sin[-2 - j])  # cos[-1] is [CLS]'s slot P+W
        bands_k.append(F.pad(k, (0, 0, j, 0))[:, :, :n])
        bands_v.append(F.pad(values, (0, 0, j, 0))[:, :, :n])
    return torch.stack(bands_k, dim=3), torch.stack(bands_v, dim=3)


def streaming_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    gad_stream: StreamPass | None = None,
    **_: Any,
) -> tuple[torch.Tensor, None]:
    """The attention of every decoder layer in a streaming pass (see the module docstring).
    query [B, H, S, d], key / value [B, kvH, S, d], unrotated; returns [B, S, H, d]."""
    if gad_stream is None:
        raise ConfigError("streaming attention outside a streaming pass")
    ctx, layer = gad_stream, int(module.layer_idx)  # type: ignore[arg-type]
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    groups = query.shape[1] // key.shape[1]
    p, w = ctx.prompt, ctx.window
    cos, sin = ctx.cos.to(query.dtype), ctx.sin.to(query.dtype)
    if ctx.mode == "prompt":
        k, q = _rope(key, cos[:p], sin[:p]), _rope(query, cos[:p], sin[:p])
        ctx.prompt_kv[layer] = (k, value)
        out = F.scaled_dot_product_attention(
            q, repeat_kv(k, groups), repeat_kv(value, groups), is_causal=True, scale=scale
        )
        return out.transpose(1, 2).contiguous(), None
    if ctx.mode == "train":
        prompt_k, prompt_v = ctx.prompt_kv[layer]
        prompt_k = repeat_kv(prompt_k, groups).expand(query.shape[0], -1, -1, -1)
        prompt_v = repeat_kv(prompt_v, groups).expand(query.shape[0], -1, -1, -1)
        n = query.shape[2] // (2 + ctx.tail)
        frames, cls = slice(0, n), slice(n, 2 * n)
        frame_k, frame_v, fm = key[:, :, frames], value[:, :, frames], ctx.frame_mask
        lead = 0
        if layer in ctx.ring_kv:  # a prefill: the frames continue the stream held in the rings
            ring_k, ring_v = ctx.ring_kv[layer]
            assert ctx.ring_mask is not None
            lead = ring_k.shape[2]
            frame_k, frame_v = torch.cat([ring_k, frame_k], 2), torch.cat([ring_v, frame_v], 2)
            ctx.new_kv[layer] = (frame_k[:, :, n:], frame_v[:, :, n:])  # the last W-1 rows
            ones = ctx.ring_mask.new_ones(ring_k.shape[0], n)
            fm = torch.cat([ctx.ring_mask, ones if fm is None else fm.to(ones.dtype)], dim=1)
        band_k, band_v = _bands(repeat_kv(frame_k, groups), repeat_kv(frame_v, groups), w, cos, sin)
        band_k, band_v = band_k[:, :, lead:], band_v[:, :, lead:]
        steps = torch.arange(lead, lead + n, device=query.device)
        ages = torch.arange(w, device=query.device)
        valid = (steps[:, None] - ages[None, :]) >= 0  # [N, W]
        if fm is not None:
            fm = fm.bool()
            shifted = torch.stack([F.pad(fm, (j, 0))[:, lead : lead + n] for j in range(w)], -1)
            valid = valid & shifted[:, None]  # [B, 1, N, W]
        cls_k = _rope(repeat_kv(key[:, :, cls], groups), cos[-1], sin[-1])
        cls_v = repeat_kv(value[:, :, cls], groups)
        q_frame = _rope(query[:, :, frames], cos[-2], sin[-2])
        q_cls = _rope(query[:, :, cls], cos[-1], sin[-1])
        outs = []
        for q, with_self in ((q_frame, False), (q_cls, True)):
            band = torch.einsum("bhnd,bhnwd->bhnw", q, band_k) * scale
            scores = [q @ prompt_k.transpose(-1, -2) * scale, band.masked_fill(~valid, -torch.inf)]
            values = [prompt_v, band_v]
            if with_self:
                scores.append((q * cls_k).sum(-1, keepdim=True) * scale)
                values.append(cls_v.unsqueeze(-2))
            outs.append(_mix(scores, values))
        if ctx.tail:
            tail = (query[:, :, 2 * n :], key[:, :, 2 * n :], value[:, :, 2 * n :])
            outs.append(
                _tail_attention(
                    ctx,
                    tail,
                    groups,
                    scale,
                    (prompt_k, prompt_v),
                    (band_k, band_v),
                    valid,
                    (cls_k, cls_v),
                )
            )
        return torch.cat(outs, dim=2).transpose(1, 2).contiguous(), None
    if ctx.mode == "step":  # query: [f_t, c_t]; grouped: [B, kvH, groups, d], no repeat_kv
        return _step_attention(ctx, layer, query, key, value, scale, groups, cos, sin), None
    raise ConfigError(f"unknown streaming mode {ctx.mode!r}")


def _tail_attention(
    ctx: StreamPass,
    tail: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    groups: int,
    scale: float,
    prompt: tuple[torch.Tensor, torch.Tensor],
    band: tuple[torch.Tensor, torch.Tensor],
    valid: torch.Tensor,
    cls: tuple[torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """The label-text tokens of a training pass: frame t's A tokens (queries [B, H, N·A, d],
    unrotated, at slots P+W+1 …) see the prompt, frame t's band, c_t and their own earlier
    tokens. Returns [B, H, N·A, d]."""
    assert ctx.tail_cos is not None and ctx.tail_sin is not None
    query, key, value = tail
    batch, heads, _, dim = query.shape
    a = ctx.tail
    n = query.shape[2] // a
    cos, sin = ctx.tail_cos.to(query.dtype), ctx.tail_sin.to(query.dtype)
    q = _rope(query.reshape(batch, heads, n, a, dim), cos, sin)
    k = _rope(repeat_kv(key, groups).reshape(batch, heads, n, a, dim), cos, sin)
    v = repeat_kv(value, groups).reshape(batch, heads, n, a, dim)
    (prompt_k, prompt_v), (band_k, band_v), (cls_k, cls_v) = prompt, band, cls
    causal = torch.ones(a, a, dtype=torch.bool, device=query.device).tril()
    scores = [
        (q.flatten(2, 3) @ prompt_k.transpose(-1, -2)).reshape(batch, heads, n, a, -1),
        torch.einsum("bhnad,bhnwd->bhnaw", q, band_k).masked_fill(~valid.unsqueeze(-2), -torch.inf),
        torch.einsum("bhnad,bhnd->bhna", q, cls_k).unsqueeze(-1),
        torch.einsum("bhnad,bhned->bhnae", q, k).masked_fill(~causal, -torch.inf),
    ]
    probs = torch.softmax(torch.cat(scores, dim=-1) * scale, dim=-1)
    p, w = prompt_k.shape[2], band_k.shape[3]
    out = (probs[..., :p].flatten(2, 3) @ prompt_v).reshape(batch, heads, n, a, dim)
    out = out + torch.einsum("bhnaw,bhnwd->bhnad", probs[..., p : p + w], band_v)
    out = out + probs[..., p + w : p + w + 1] * cls_v.unsqueeze(3)
    out = out + torch.einsum("bhnae,bhned->bhnad", probs[..., p + w + 1 :], v)
    return out.reshape(batch, heads, n * a, dim)


def _step_attention(
    ctx: StreamPass,
    layer: int,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    scale: float,
    groups: int,
    cos: torch.Tensor,
    sin: torch.Tensor,
) -> torch.Tensor:
    """One step: [f_t, c_t] against the prompt, the ring + f_t and (for c_t) itself.
    Scores are computed per key/value head for its group of query heads
    ([B, kvH, groups, d] against [B, kvH, K, d]), so no K/V is copied per query head."""
    p, w = ctx.prompt, ctx.window
    batch, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    ring_k, ring_v = ctx.ring_kv[layer]
    prompt_k, prompt_v = ctx.prompt_kv[layer]  # [1, kvH, P, d]: broadcast over the batch
    ctx.new_kv[layer] = (key[:, :, :1], value[:, :, :1])
    band_k = _rope(torch.cat([ring_k, key[:, :, :1]], dim=2), cos[p : p + w], sin[p : p + w])
    band_v = torch.cat([ring_v, value[:, :, :1]], dim=2)  # oldest … newest: slots P … P+W-1
    assert ctx.ring_mask is not None
    valid = F.pad(ctx.ring_mask.bool(), (0, 1), value=True)[:, None, None, :]  # + f_t itself

    def grouped(q: torch.Tensor) -> torch.Tensor:  # [B, H, 1, d] → [B, kvH, groups, d]
        return q.reshape(batch, kv_heads, groups, dim)

    q_frame = grouped(_rope(query[:, :, :1], cos[-2], sin[-2]))
    q_cls = grouped(_rope(query[:, :, 1:2], cos[-1], sin[-1]))
    cls_k = _rope(key[:, :, 1:2], cos[-1], sin[-1])
    cls_v = value[:, :, 1:2]
    outs = []
    for q, with_self in ((q_frame, False), (q_cls, True)):
        scores = [
            q @ prompt_k.transpose(-1, -2) * scale,
            (q @ band_k.transpose(-1, -2) * scale).masked_fill(~valid, -torch.inf),
        ]
        values = [prompt_v, band_v]
        if with_self:
            scores.append(q @ cls_k.transpose(-1, -2) * scale)
            values.append(cls_v)
        outs.append(_mix(scores, values).reshape(batch, heads, 1, dim))
    return torch.cat(outs, dim=2).transpose(1, 2).contiguous()


AttentionInterface.register(ATTENTION, streaming_attention)


@contextlib.contextmanager
def _streaming(model: GADClassifier) -> Iterator[Any]:
    """The decoder with the streaming attention selected (restored afterwards)."""
    decoder = base_model(model.lm).get_decoder()
    config = decoder.config
    before = config._attn_implementation
    config._attn_implementation = ATTENTION
    try:
        yield decoder
    finally:
        config._attn_implementation = before


class StreamingGAD:
    """The streaming passes of a GAD classifier with window W (frames seen per frame)."""

    def __init__(self, model: GADClassifier, window: int) -> None:
        if window < 1:
            raise ConfigError(f"the streaming window must be at least 1 frame, got {window}")
        if model.head is None or model.cls_embedding is None:
            raise ConfigError("streaming needs a [CLS] head (discriminative or gad)")
        self.model, self.window = model, window
        self.prompt = len(model.prefix_ids)
        decoder = base_model(model.lm).get_decoder()
        positions = torch.arange(self.prompt + window + 1, device=model.prefix_ids.device)
        probe = torch.zeros(1, 1, dtype=model._lm_dtype, device=positions.device)
        cos, sin = decoder.rotary_emb(probe, positions[None])
        self.cos, self.sin = cos[0].float(), sin[0].float()

    def _pass(self, mode: str, **extra: Any) -> StreamPass:
        return StreamPass(mode, self.prompt, self.window, self.cos, self.sin, **extra)

    def _run(self, decoder: Any, embeds: torch.Tensor, ctx: StreamPass) -> torch.Tensor:
        zeros = torch.zeros(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        out = decoder(inputs_embeds=embeds, position_ids=zeros, use_cache=False, gad_stream=ctx)
        return out.last_hidden_state

    def prompt_state(self, decoder: Any) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        """Each layer's rotated prompt K/V [1, kvH, P, d]: computed once per model."""
        ctx = self._pass("prompt")
        self._run(decoder, self.model._prefix_embeds().unsqueeze(0), ctx)
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
        model = self.model
        batch, n, _ = features.shape
        dtype = model._lm_dtype
        assert model.cls_embedding is not None
        parts = [
            model.connector(features.float()).to(dtype),
            model.cls_embedding.to(dtype).reshape(1, 1, -1).expand(batch, n, -1),
        ]
        tail = 0 if tail_ids is None else tail_ids.shape[-1]
        if tail_ids is not None:
            parts.append(model._embed_tokens(tail_ids.flatten(1)).to(dtype))
        with _streaming(model) as decoder:
            prompt_kv = self.prompt_state(decoder)
            ctx = self._pass("train", frame_mask=frame_mask, prompt_kv=prompt_kv, tail=tail)
            if tail:
                slots = torch.arange(tail, device=features.device) + self.prompt + self.window + 1
                probe = torch.zeros(1, 1, dtype=dtype, device=features.device)
                cos, sin = decoder.rotary_emb(probe, slots[None])
                ctx.tail_cos, ctx.tail_sin = cos[0].float(), sin[0].float()
            hidden = self._run(decoder, torch.cat(parts, dim=1), ctx)
        tail_hidden = hidden[:, 2 * n :].reshape(batch, n, tail, -1) if tail else None
        return hidden[:, n : 2 * n], tail_hidden

    def prefill_rows(
        self,
        features: torch.Tensor,
        prompt_kv: dict[int, tuple[torch.Tensor, torch.Tensor]],
        rings: dict[int, tuple[torch.Tensor, torch.Tensor]],
        mask: torch.Tensor,
        frame_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[int, tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
        """N steps in one banded pass (what prefill.onnx computes): the logits [B, N, C] of
        frames features [B, N, D] that continue streams held in `rings` / `mask` (as for
        `step_rows`), and the rings and mask after them. Equal to N calls of `step_rows`.
        `frame_mask` [B, N] marks real frames: padding at the front of a stream that starts
        empty is never read, so a stream can be padded to a whole number of chunks."""
        model = self.model
        batch, n, _ = features.shape
        dtype = model._lm_dtype
        assert model.cls_embedding is not None and model.head is not None
        embeds = torch.cat(
            [
                model.connector(features.float()).to(dtype),
                model.cls_embedding.to(dtype).reshape(1, 1, -1).expand(batch, n, -1),
            ],
            dim=1,
        )
        ctx = self._pass(
            "train", prompt_kv=prompt_kv, ring_kv=rings, ring_mask=mask, frame_mask=frame_mask
        )
        with _streaming(model) as decoder:
            hidden = self._run(decoder, embeds, ctx)
        real = mask.new_ones(batch, n) if frame_mask is None else frame_mask.to(mask.dtype)
        new_mask = torch.cat([mask, real], dim=1)[:, n:]
        return model.head(hidden[:, n : 2 * n].float()), ctx.new_kv, new_mask

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

    def start(self, batch: int) -> StreamState:
        """Empty rings for `batch` streams (and the prompt's K/V)."""
        with _streaming(self.model) as decoder:
            prompt_kv = self.prompt_state(decoder)
        rings = {
            layer: (k.new_zeros(batch, k.shape[1], self.window - 1, k.shape[-1]),) * 2
            for layer, (k, _) in prompt_kv.items()
        }
        device = self.model.prefix_ids.device
        mask = torch.zeros(batch, self.window - 1, dtype=torch.bool, device=device)
        return StreamState(prompt_kv, rings, mask)

    def step(self, features: torch.Tensor, state: StreamState) -> torch.Tensor:
        """Logits [B, C] for one new frame per stream (features [B, D]); `state` advances."""
        logits, rows = self.step_rows(features, state.prompt_kv, state.rings, state.mask)
        state.push(rows)
        return logits

    def step_rows(
        self,
        features: torch.Tensor,
        prompt_kv: dict[int, tuple[torch.Tensor, torch.Tensor]],
        rings: dict[int, tuple[torch.Tensor, torch.Tensor]],
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[int, tuple[torch.Tensor, torch.Tensor]]]:
        """One step as a pure function (what step.onnx computes): logits [B, C] and each
        layer's new pre-RoPE K/V row ([B, kvH, 1, d] each) for features [B, D], given the
        rings ([B, kvH, W-1, d], oldest first) and their validity `mask` [B, W-1]."""
        model = self.model
        batch = features.shape[0]
        dtype = model._lm_dtype
        assert model.cls_embedding is not None and model.head is not None
        embeds = torch.cat(
            [
                model.connector(features.float()[:, None]).to(dtype),
                model.cls_embedding.to(dtype).reshape(1, 1, -1).expand(batch, 1, -1),
            ],
            dim=1,
        )
        ctx = self._pass("step", prompt_kv=prompt_kv, ring_kv=rings, ring_mask=mask)
        with _streaming(model) as decoder:
            hidden = self._run(decoder, embeds, ctx)
        return model.head(hidden[:, 1].float()), ctx.new_kv


@dataclass
class StreamState:
    """Per layer the ring of the last W-1 frames' pre-RoPE K/V (oldest first) + validity."""

    prompt_kv: dict[int, tuple[torch.Tensor, torch.Tensor]]
    rings: dict[int, tuple[torch.Tensor, torch.Tensor]]
    mask: torch.Tensor  # [B, W-1]

    def push(self, rows: dict[int, tuple[torch.Tensor, torch.Tensor]]) -> None:
        if self.mask.shape[1] == 0:
            return
        for layer, (k, v) in rows.items():
            ring_k, ring_v = self.rings[layer]
            self.rings[layer] = (
                torch.cat([ring_k[:, :, 1:], k], dim=2),
                torch.cat([ring_v[:, :, 1:], v], dim=2),
            )
        self.mask = torch.cat([self.mask[:, 1:], self.mask.new_ones(len(self.mask), 1)], dim=1)


class StreamingObjective(torch.nn.Module):
    """The training loss of a streaming model over sequences: cross-entropy at every
    frame's [CLS] (background frames weighted by `background_weight`), frames with label
    -100 left out; for GAD, + λ · the LM loss on every supervised frame's label text
    ("\nAssistant: {label}[, {previous}]<eos>" after its [CLS], seeing what the [CLS]
    sees). What `gad train --attention streaming` optimises; `model` is what is saved."""

    def __init__(self, model: GADClassifier) -> None:
        super().__init__()
        cfg = model.config
        if not cfg.is_streaming:
            raise ConfigError("the model was not configured for streaming attention")
        self.model = model
        self.stream = StreamingGAD(model, cfg.stream_window)

    def forward(
        self,
        features: torch.Tensor,
        mask: torch.Tensor,
        labels: torch.Tensor,
        previous: torch.Tensor | None = None,
    ) -> GADOutput:
        cfg = self.model.config
        tail = self._tails(labels, previous) if cfg.uses_lm_loss else None
        cls, tail_hidden = self.stream.frame_pass(features, mask, None if tail is None else tail[0])
        assert self.model.head is not None
        logits = self.model.head(cls.float())
        per_frame = F.cross_entropy(
            logits.flatten(0, 1), labels.flatten(), reduction="none", ignore_index=-100
        )
        supervised = (labels.flatten() != -100).float()
        weight = supervised
        bg = cfg.background_index
        if bg is not None:  # as the windowed loss: weighted, then the mean over samples
            weight = torch.where(labels.flatten() == bg, weight * cfg.background_weight, weight)
        cls_loss = (per_frame * weight).sum() / supervised.sum().clamp(min=1.0)
        if tail is None or tail_hidden is None:
            return GADOutput(loss=cls_loss, logits=logits, cls_loss=cls_loss, lm_loss=None)
        lm_loss = self._lm_loss(tail_hidden, tail[1])
        loss = cls_loss + cfg.lm_weight * lm_loss
        return GADOutput(loss=loss, logits=logits, cls_loss=cls_loss, lm_loss=lm_loss)

    def _tails(
        self, labels: torch.Tensor, previous: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every frame's tail ids [B, N, A] ("\\nAssistant:" + answer, right-padded) and the
        answer ids that are LM targets [B, N, A'] (-100 where none); the answers start
        after the assistant prompt."""
        prompt = self.model.prompt
        assistant = list(prompt.assistant)
        flat = labels.flatten().tolist()
        prev = [-1] * len(flat) if previous is None else previous.flatten().tolist()
        answers = [
            prompt.answer(lab, prv) if lab >= 0 else [] for lab, prv in zip(flat, prev, strict=True)
        ]
        width = max(1, max(map(len, answers)))
        ids = torch.full((len(flat), len(assistant) + width), prompt.eos, dtype=torch.long)
        targets = torch.full((len(flat), width), -100, dtype=torch.long)
        ids[:, : len(assistant)] = torch.tensor(assistant)
        for i, answer in enumerate(answers):
            ids[i, len(assistant) : len(assistant) + len(answer)] = torch.tensor(answer)
            targets[i, : len(answer)] = torch.tensor(answer)
        shape = (*labels.shape, -1)
        device = labels.device
        return ids.reshape(shape).to(device), targets.reshape(shape).to(device)

    def _lm_loss(self, tail_hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the answer tokens, each predicted by the token before it."""
        first = len(self.model.prompt.assistant) - 1
        predictors = tail_hidden[:, :, first : first + targets.shape[-1]]
        keep = targets != -100
        if not bool(keep.any()):
            return tail_hidden.sum() * 0.0
        logits = self.model._lm_head(predictors[keep]).float()
        return F.cross_entropy(logits, targets[keep])
