"""`gad bench clip`: per-clip latency of the clip model's one-pass heads vs the generative
clip classifier, side by side on the same backbone, clip length and device.

    one answer   the step question: a [CLS] pass (step head) vs a constrained greedy
                 decode with a KV cache (stops at the step name's end, so the step count
                 is a real name's token count whatever the weights)
    whole clip   step, task and next step: one batched pass of the three questions (what
                 clip.onnx runs) vs three decodes

Weights are random (LoRA r=128 as the paper): latency does not depend on their values.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch

from bench.engine import DTYPES, _median_time
from model.backbone import resolve_backbone
from model.clip import QUESTIONS, STEP, ClipClassifier
from model.config import ModelConfig
from model.export.graph import prepare_for_export
from runtime.system import cpu_name


@dataclass(frozen=True)
class ClipBench:
    clip_frames: int = 32
    feature_dim: int = 2048
    repeats: int = 10
    device: str = "cpu"
    dtype: str = "float32"


@dataclass(frozen=True)
class ClipTiming:
    backbone: str
    what: str  # "one answer" | "whole clip"
    head_ms: float
    generative_ms: float


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
    sync = torch.cuda.synchronize if bench.device.startswith("cuda") else (lambda: None)
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(1, bench.clip_frames, bench.feature_dim, generator=gen)
    features = features.to(bench.device)
    mask = torch.ones(1, bench.clip_frames, dtype=torch.long, device=bench.device)
    step = torch.full((1,), STEP, device=bench.device)
    head = _build(spec, "gad", bench)
    with torch.no_grad():
        one_head = _median_time(
            lambda: head.question_logits(features, mask, step), bench.repeats, sync
        )
        all_head = _median_time(lambda: head.clip_logits(features, mask), bench.repeats, sync)
        # What clip.onnx and the torch backend run: LoRA merged into the projections.
        prepare_for_export(head)
        one_merged = _median_time(
            lambda: head.question_logits(features, mask, step), bench.repeats, sync
        )
        all_merged = _median_time(lambda: head.clip_logits(features, mask), bench.repeats, sync)
    generative = _build(spec, "generative", bench)
    one_gen = _median_time(
        lambda: generative.generate_clip(features, mask, STEP), bench.repeats, sync
    )
    all_gen = _median_time(
        lambda: [generative.generate_clip(features, mask, q) for q in range(len(QUESTIONS))],
        bench.repeats,
        sync,
    )

    def ms(runs: list[float]) -> float:
        return 1e3 * statistics.median(runs)

    return [
        ClipTiming(spec, "one answer", ms(one_head), ms(one_gen)),
        ClipTiming(spec, "whole clip", ms(all_head), ms(all_gen)),
        ClipTiming(spec, "one answer, LoRA merged", ms(one_merged), ms(one_gen)),
        ClipTiming(spec, "whole clip, LoRA merged", ms(all_merged), ms(all_gen)),
    ]


def render_clip_bench(rows: list[ClipTiming], bench: ClipBench) -> str:
    device = bench.device
    if device.startswith("cuda"):
        device = f"{torch.cuda.get_device_name()} ({bench.dtype})"
    else:
        device = f"CPU {cpu_name()}, {torch.get_num_threads()} threads ({bench.dtype})"
    lines = [
        f"Clip of {bench.clip_frames} rows × {bench.feature_dim}-d, batch 1, {device}, "
        f"torch {torch.__version__}; median of {bench.repeats} after a warm-up. "
        "One answer: the step question; whole clip: step, task and next step.",
        "",
        "| backbone | what | heads ms | generative ms | speed-up |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.backbone} | {r.what} | {r.head_ms:.2f} | {r.generative_ms:.2f} | "
            f"{r.generative_ms / r.head_ms:.1f}× |"
        )
    return "\n".join(lines)
