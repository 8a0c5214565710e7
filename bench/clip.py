"""`gad bench clip`: per-answer latency of the clip model's one-pass heads vs the
generative clip classifier, side by side on the same backbone, clip length and device,
each in both LoRA states (adapters as trained, and merged: bench/merge.py), so a ratio
never sets a merged head against unmerged decoding; everything timed round-robin.

Like with like, per answer (batch 1, one question per pass on both sides):
    step question      a [CLS] pass (step head) vs a constrained greedy decode with a KV
                       cache (stops at the step name's end, so the step count is a real
                       name's token count whatever the weights)
    three questions    step, task and next step asked one at a time: three head passes vs
                       three decodes, reported per answer
Then, labelled as such, the batched figure: the heads answer all three questions in one
batched pass of three (what clip.onnx runs) vs the three sequential decodes — a ratio that
mixes batching into the head-vs-decoding difference.

Weights are random (LoRA r=128 as the paper): latency does not depend on their values.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

from bench.engine import ADAPTERS, DTYPES, LORA_STATES, MERGED, _interleaved
from bench.merge import merge_for_decoding, merge_head
from model.backbone import resolve_backbone
from model.clip import QUESTIONS, STEP, ClipClassifier
from model.config import ModelConfig
from runtime.system import cpu_name

# What a row times. ONE and SEQUENTIAL are per answer on both sides; BATCHED is not.
ONE = "step question"
SEQUENTIAL = "three questions, one at a time"
BATCHED = "three questions, heads batched"


@dataclass(frozen=True)
class ClipBench:
    clip_frames: int = 32
    feature_dim: int = 2048
    repeats: int = 10
    threads: int | None = None
    device: str = "cpu"
    dtype: str = "float32"


@dataclass(frozen=True)
class ClipTiming:
    backbone: str
    lora: str  # ADAPTERS (unmerged, as trained) | MERGED
    what: str  # ONE | SEQUENTIAL | BATCHED
    head_ms: float  # the whole measured call: one pass, three passes, or one batched pass
    generative_ms: float  # one decode (ONE) or three sequential decodes

    @property
    def answers(self) -> int:
        return 1 if self.what == ONE else len(QUESTIONS)

    @property
    def speedup(self) -> float:
        return self.generative_ms / self.head_ms


def _build(spec: str, kind: str, bench: ClipBench) -> ClipClassifier:
    # The synthetic procedures' names: real label lengths for the decode.
    from training.data.procedures import STEPS, TASKS

    config = ModelConfig(
        backbone=spec,
        kind=kind,
        feature_dim=bench.feature_dim,
        class_names=STEPS,
        background_index=None,
        task_names=tuple(TASKS),
        clip_frames=bench.clip_frames,
    )
    backbone = resolve_backbone(spec, dtype=DTYPES[bench.dtype])
    torch.manual_seed(0)
    return ClipClassifier(config, backbone).to(bench.device).eval()


def run_clip_bench(spec: str, bench: ClipBench) -> list[ClipTiming]:
    """Per LoRA state: the step question, the three questions one at a time, and the
    batched three-question pass, on the heads and by decoding; all timed round-robin (each
    model beside a merged copy of it)."""
    if bench.threads:
        torch.set_num_threads(bench.threads)
    cuda = bench.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(1, bench.clip_frames, bench.feature_dim, generator=gen)
    features = features.to(bench.device)
    mask = torch.ones(1, bench.clip_frames, dtype=torch.long, device=bench.device)
    questions = [torch.full((1,), q, device=bench.device) for q in range(len(QUESTIONS))]
    head = _build(spec, "gad", bench)
    heads = {ADAPTERS: head, MERGED: merge_head(copy.deepcopy(head))}
    generative = _build(spec, "generative", bench)
    decoders = {ADAPTERS: generative, MERGED: merge_for_decoding(copy.deepcopy(generative))}

    def one_head(model: ClipClassifier) -> object:
        return model.question_logits(features, mask, questions[STEP])

    def three_heads(model: ClipClassifier) -> object:
        return [model.question_logits(features, mask, q) for q in questions]

    def batched_heads(model: ClipClassifier) -> object:
        return model.clip_logits(features, mask)

    def one_decode(model: ClipClassifier) -> object:
        return model.generate_clip(features, mask, STEP, constrained=True)

    def three_decodes(model: ClipClassifier) -> object:
        return [
            model.generate_clip(features, mask, q, constrained=True) for q in range(len(QUESTIONS))
        ]

    calls: dict[tuple[str, str, str], Callable[[], object]] = {}
    for lora in LORA_STATES:
        calls["heads", ONE, lora] = partial(one_head, heads[lora])
        calls["heads", SEQUENTIAL, lora] = partial(three_heads, heads[lora])
        calls["heads", BATCHED, lora] = partial(batched_heads, heads[lora])
        calls["decode", ONE, lora] = partial(one_decode, decoders[lora])
        calls["decode", SEQUENTIAL, lora] = partial(three_decodes, decoders[lora])
    with torch.inference_mode():
        runs = _interleaved(calls, bench.repeats, sync)
    ms = {key: 1e3 * statistics.median(times) for key, times in runs.items()}
    del heads, decoders, head, generative
    if cuda:
        torch.cuda.empty_cache()
    # The batched heads answer against the same three sequential decodes.
    decode_of = {ONE: ONE, SEQUENTIAL: SEQUENTIAL, BATCHED: SEQUENTIAL}
    return [
        ClipTiming(spec, lora, what, ms["heads", what, lora], ms["decode", decode_of[what], lora])
        for what in (ONE, SEQUENTIAL, BATCHED)
        for lora in LORA_STATES
    ]


def render_clip_bench(rows: list[ClipTiming], bench: ClipBench) -> str:
    device = bench.device
    if device.startswith("cuda"):
        device = f"{torch.cuda.get_device_name()} ({bench.dtype})"
    else:
        threads = torch.get_num_threads()
        device = f"CPU {cpu_name()}, {threads} thread{'s' * (threads != 1)} ({bench.dtype})"
    lines = [
        f"Clip of {bench.clip_frames} rows × {bench.feature_dim}-d, batch 1, {device}, "
        f"torch {torch.__version__}; median of {bench.repeats} after a warm-up. Heads: "
        "[CLS] passes; generative: constrained greedy decoding with a KV cache. LoRA: "
        "*adapters* (unmerged, as trained) or *merged* (heads: what clip.onnx and the torch "
        "backend run; decoding: every adapter merged, lm_head's included).",
        "",
        "**Per answer, like with like** (one question per pass on both sides, same LoRA state):",
        "",
        "| backbone | LoRA | question | heads ms per answer | generative ms per answer | "
        "heads vs generative |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in (r for r in rows if r.what != BATCHED):
        lines.append(
            f"| {r.backbone} | {r.lora} | {r.what} | {r.head_ms / r.answers:.2f} | "
            f"{r.generative_ms / r.answers:.2f} | {r.speedup:.1f}× |"
        )
    lines += [
        "",
        "**Batched three-question pass** (not per answer): the heads answer step, task and "
        "next step as one batch of three (clip.onnx's layout), decoding runs three times one "
        "after the other; the ratio mixes batching into the head-vs-decoding difference.",
        "",
        "| backbone | LoRA | heads: one batched pass ms | heads: three passes ms | "
        "generative: three decodes ms | batched heads vs three decodes |",
        "|---|---|---:|---:|---:|---:|",
    ]
    sequential = {(r.backbone, r.lora): r for r in rows if r.what == SEQUENTIAL}
    for r in (r for r in rows if r.what == BATCHED):
        three = sequential.get((r.backbone, r.lora))
        passes = f"{three.head_ms:.2f}" if three else "—"
        lines.append(
            f"| {r.backbone} | {r.lora} | {r.head_ms:.2f} | {passes} | {r.generative_ms:.2f} | "
            f"{r.speedup:.1f}× |"
        )
    return "\n".join(lines)
