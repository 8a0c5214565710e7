"""The streaming attention of every decoder layer (see model/streaming/__init__.py).

`streaming_attention` is registered as `gad_streaming` in transformers' AttentionInterface
and reads what it needs from the `StreamPass` the runner hands to the decoder (the layers
pass their kwargs on). It dispatches on the pass's `PassMode`: the prompt alone (causal),
a banded pass over N frames (training, or a prefill that continues rings), or one step.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.models.llama.modeling_llama import repeat_kv, rotate_half

from runtime.errors import ConfigError

ATTENTION = "gad_streaming"

KV = dict[int, tuple[torch.Tensor, torch.Tensor]]  # per layer: (K, V)


class PassMode(enum.Enum):
    """What a streaming pass computes (the fields of `StreamPass` each mode reads)."""

    PROMPT = "prompt"  # the prompt alone, causal; its rotated K/V per layer → `prompt_kv`
    TRAIN = "train"  # N frames | N [CLS] (+ their label text) from the stream's start, banded
    PREFILL = "prefill"  # N frames | N [CLS] continuing the streams held in the rings, banded
    STEP = "step"  # one frame and its [CLS] against the prompt and the rings


@dataclass
class StreamPass:
    """What one streaming pass hands to every layer's attention (via the layers' kwargs).

    PROMPT: the prompt alone, causal; its rotated K/V per layer go to `prompt_kv`.
    TRAIN: N frame tokens | N [CLS] tokens against `prompt_kv`, banded; `frame_mask`
      [B, N] marks frames that exist (padding is never read). With `tail` A > 0, N·A more
      tokens follow (frame-major): each frame's label text, which sees what its [CLS]
      sees, the [CLS] and its own earlier tokens; nothing else sees it.
    PREFILL: as TRAIN (without a tail), the frames continuing the streams held in the
      rings (`ring_kv`, `ring_mask` as for STEP); each layer's last W-1 pre-RoPE K/V rows
      (the rings after the pass) go to `new_kv`.
    STEP: one frame token and its [CLS] against `prompt_kv` and the rings
      (`ring_kv[layer]` = pre-RoPE K, V [B, kvH, W-1, d], oldest first; `ring_mask` [B, W-1]);
      each layer's new pre-RoPE K/V row goes to `new_kv`.
    """

    mode: PassMode
    prompt: int
    window: int
    cos: torch.Tensor  # [P+W+1, d]
    sin: torch.Tensor
    frame_mask: torch.Tensor | None = None
    prompt_kv: KV = field(default_factory=dict)
    ring_kv: KV = field(default_factory=dict)
    ring_mask: torch.Tensor | None = None
    new_kv: KV = field(default_factory=dict)
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
    cos, sin = ctx.cos.to(query.dtype), ctx.sin.to(query.dtype)
    match ctx.mode:
        case PassMode.PROMPT:
            out = _prompt_attention(ctx, layer, query, key, value, scale, groups, cos, sin)
        case PassMode.TRAIN | PassMode.PREFILL:
            out = _banded_attention(ctx, layer, query, key, value, scale, groups, cos, sin)
        case PassMode.STEP:  # query: [f_t, c_t]; grouped: [B, kvH, groups, d], no repeat_kv
            out = _step_attention(ctx, layer, query, key, value, scale, groups, cos, sin)
        case _:
            raise ConfigError(f"unknown streaming mode {ctx.mode!r}")
    return out, None


def _prompt_attention(
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
    """The prompt, causal, at slots 0 … P-1; its rotated K/V go to `prompt_kv`."""
    p = ctx.prompt
    k, q = _rope(key, cos[:p], sin[:p]), _rope(query, cos[:p], sin[:p])
    ctx.prompt_kv[layer] = (k, value)
    out = F.scaled_dot_product_attention(
        q, repeat_kv(k, groups), repeat_kv(value, groups), is_causal=True, scale=scale
    )
    return out.transpose(1, 2).contiguous()


def _banded_attention(
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
    """N frames | N [CLS] (| N·A label-text tokens) in one pass: each frame's band of W
    frames; for PREFILL the band reaches back into the rings, which are carried on."""
    w = ctx.window
    prompt_k, prompt_v = ctx.prompt_kv[layer]
    prompt_k = repeat_kv(prompt_k, groups).expand(query.shape[0], -1, -1, -1)
    prompt_v = repeat_kv(prompt_v, groups).expand(query.shape[0], -1, -1, -1)
    n = query.shape[2] // (2 + ctx.tail)
    frames, cls = slice(0, n), slice(n, 2 * n)
    frame_k, frame_v, fm = key[:, :, frames], value[:, :, frames], ctx.frame_mask
    lead = 0
    if ctx.mode is PassMode.PREFILL:  # the frames continue the stream held in the rings
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
    return torch.cat(outs, dim=2).transpose(1, 2).contiguous()


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
def streaming_selected(decoder: Any) -> Iterator[Any]:
    """`decoder` (a transformers model) with `gad_streaming` as its attention, restored after.

    This writes the config's `_attn_implementation` (its setter) — the same write that
    transformers' public `set_attn_implementation` ends in — because that public API does
    not fit a switch made around every pass. In transformers 5.25.0,
    `PreTrainedModel.set_attn_implementation("gad_streaming")` does accept the registered
    function (checked), but:

    - there is no public getter to restore the previous implementation afterwards (5.25.0
      has `get_experts_implementation`, no `get_attn_implementation`), so the restore would
      read `config._attn_implementation` all the same;
    - every call re-validates the name and walks all submodules (`self.modules()`, to reach
      sub-models): ~0.4 ms per call on the 2-layer tiny backbone (171 modules, ~83 per
      LoRA layer; ~2,500 on SmolLM2-135M), twice per pass — and the PyTorch step engine
      runs one pass per frame (measured: +0.1–0.6 ms on a ~3 ms tiny step).

    Passing `attn_implementation` at load does not apply either: the model is also used
    windowed (sdpa), and the choice is per pass. The decoder's config is the causal LM's own
    config object, so the whole model switches for the duration.
    """
    config = decoder.config
    before = config._attn_implementation
    config._attn_implementation = ATTENTION
    try:
        yield decoder
    finally:
        config._attn_implementation = before
