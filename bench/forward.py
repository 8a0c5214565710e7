"""Parameter counts and one-forward latency of the GAD classifier on a backbone."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from model.backbone import resolve_backbone
from model.config import ModelConfig
from model.gad import GADClassifier, count_parameters
from runtime.system import cpu_name


@dataclass(frozen=True)
class ForwardBench:
    kind: str = "gad"
    long_frames: int = 128
    short_frames: int = 32
    feature_dim: int = 2048
    num_classes: int = 22
    batch: int = 1
    repeats: int = 5
    threads: int | None = None


@dataclass(frozen=True)
class ForwardRow:
    backbone: str
    hidden: int
    layers: int
    total: int
    trainable: int
    tokens: int  # sequence length of one window
    median_ms: float
    min_ms: float
    max_ms: float


def run_forward_bench(spec: str, bench: ForwardBench) -> ForwardRow:
    if bench.threads:
        torch.set_num_threads(bench.threads)
    backbone = resolve_backbone(spec)
    config = ModelConfig(
        backbone=spec,
        kind=bench.kind,
        feature_dim=bench.feature_dim,
        class_names=tuple(f"action {i}" for i in range(bench.num_classes)),
        long_frames=bench.long_frames,
        short_frames=bench.short_frames,
    )
    model = GADClassifier(config, backbone).eval()
    total, trainable = count_parameters(model)
    frames = bench.long_frames + bench.short_frames
    features = torch.randn(bench.batch, frames, bench.feature_dim)
    run = model.class_logits if config.uses_cls else model.generate
    times = []
    with torch.inference_mode():
        run(features)  # warm-up
        for _ in range(bench.repeats):
            start = time.perf_counter()
            run(features)
            times.append((time.perf_counter() - start) * 1e3)
    return ForwardRow(
        backbone=spec,
        hidden=backbone.hidden_size,
        layers=int(backbone.describe()["num_layers"] or 0),
        total=total,
        trainable=trainable,
        tokens=len(model.prompt.prefix) + frames + int(config.uses_cls),
        median_ms=statistics.median(times),
        min_ms=min(times),
        max_ms=max(times),
    )


def render_table(rows: list[ForwardRow], bench: ForwardBench) -> str:
    what = "class_logits (one pass)" if bench.kind != "generative" else "generate (greedy decode)"
    lines = [
        f"GAD `{bench.kind}` {what}: window {bench.long_frames} long + {bench.short_frames} short, "
        f"{bench.feature_dim}-d features, {bench.num_classes} classes, batch {bench.batch}, "
        f"LoRA r=128 α=256; median of {bench.repeats} after 1 warm-up",
        f"CPU: {cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "",
        "| backbone | hidden × layers | params total | trainable | trainable % | tokens | "
        "median ms | min ms | max ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.backbone} | {r.hidden} × {r.layers} | {r.total:,} | {r.trainable:,} | "
            f"{100 * r.trainable / r.total:.1f} | {r.tokens} | {r.median_ms:.1f} | "
            f"{r.min_ms:.1f} | {r.max_ms:.1f} |"
        )
    return "\n".join(lines)
