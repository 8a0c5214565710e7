"""`gad bench engine`: what one forward pass per frame buys, measured side by side.

Per frame, on the same backbone, window and batch, in PyTorch eager:
  generative   greedy decoding with a KV cache, constrained to the label set: decoding
               stops at the label's end, so the step count is a real label's token count
               whatever the weights (the paper decodes freely, which on random weights
               would run to the length limit; on trained weights it stops at <eos> too)
  head         GADClassifier.class_logits: one pass, no decoding
each in two LoRA states: adapters as trained (unmerged) and merged (bench/merge.py), so
every head-vs-decoding ratio sets like against like; all four are timed round-robin. Then
the served head, head.onnx in onnxruntime (LoRA merged), against the merged PyTorch head;
and throughput (windows/s): the authors' naive loop (PyTorch, one full recompute per
frame, batch 1) against the engine at batch 1, 4, 16, 64 (what the micro-batcher forms
when that many streams have a frame pending), in the same (merged) state.

Weights are random (LoRA r=128 as the paper): latency does not depend on their values.
"""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from bench.merge import merge_for_decoding, merge_head
from model.backbone import resolve_backbone
from model.config import ModelConfig
from model.gad import GADClassifier
from runtime.system import cpu_name

# THUMOS'14's 20 actions + background: real label lengths for the decode step count.
THUMOS_CLASSES = (
    *("Background", "BaseballPitch", "BasketballDunk", "Billiards", "CleanAndJerk"),
    *("CliffDiving", "CricketBowling", "CricketShot", "Diving", "FrisbeeCatch"),
    *("GolfSwing", "HammerThrow", "HighJump", "JavelinThrow", "LongJump", "PoleVault"),
    *("Shotput", "SoccerPenalty", "TennisSwing", "ThrowDiscus", "VolleyballSpiking"),
)
K = TypeVar("K")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class EngineBench:
    long_frames: int = 128
    short_frames: int = 32
    feature_dim: int = 2048
    repeats: int = 5
    threads: int | None = None
    latency_batches: tuple[int, ...] = (1,)
    engine_batches: tuple[int, ...] = (1, 4, 16, 64)
    device: str = "cpu"
    dtype: str = "float32"
    onnx: bool = True


# The two LoRA states every PyTorch path is timed in; a ratio never mixes them.
ADAPTERS, MERGED = "adapters", "merged"
LORA_STATES = (ADAPTERS, MERGED)
DECODE, HEAD, NAIVE, ONNX = "generative decode", "head", "naive loop", "head (onnxruntime)"


@dataclass
class Timing:
    backbone: str
    path: str  # DECODE | HEAD | NAIVE (the head at batch 1 for the throughput table) | ONNX
    lora: str  # ADAPTERS (unmerged, as trained) | MERGED
    batch: int
    median_s: float
    runs: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def per_window_ms(self) -> float:
        return 1e3 * self.median_s / self.batch

    @property
    def windows_per_s(self) -> float:
        return self.batch / self.median_s


def _median_time(fn: Callable[[], object], repeats: int, sync: Callable[[], None]) -> list[float]:
    return _interleaved({0: fn}, repeats, sync)[0]


def _interleaved(
    calls: dict[K, Callable[[], object]], repeats: int, sync: Callable[[], None]
) -> dict[K, list[float]]:
    """Seconds per run of each call, after one warm-up each, timed round-robin: run r of
    every call before run r + 1 of any, so a change in the machine's load falls on both
    sides of a ratio alike."""
    for fn in calls.values():
        fn()  # warm-up
    sync()
    runs: dict[K, list[float]] = {key: [] for key in calls}
    for _ in range(repeats):
        for key, fn in calls.items():
            start = time.perf_counter()
            fn()
            sync()
            runs[key].append(time.perf_counter() - start)
    return runs


def _build(spec: str, kind: str, bench: EngineBench) -> GADClassifier:
    config = ModelConfig(
        backbone=spec,
        kind=kind,
        feature_dim=bench.feature_dim,
        class_names=tuple(THUMOS_CLASSES),
        long_frames=bench.long_frames,
        short_frames=bench.short_frames,
    )
    backbone = resolve_backbone(spec, dtype=DTYPES[bench.dtype])
    torch.manual_seed(0)
    return GADClassifier(config, backbone).to(bench.device).eval()


def run_engine_bench(spec: str, bench: EngineBench) -> list[Timing]:
    """Decode and head rows in both LoRA states (each model beside a merged copy of it), all
    timed round-robin; then the onnxruntime rows."""
    if bench.threads:
        torch.set_num_threads(bench.threads)
    cuda = bench.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    size = bench.long_frames + bench.short_frames
    generative = _build(spec, "generative", bench)
    decoders = {ADAPTERS: generative, MERGED: merge_for_decoding(copy.deepcopy(generative))}
    gad = _build(spec, "gad", bench)
    heads = {ADAPTERS: gad, MERGED: merge_head(copy.deepcopy(gad))}

    def decode(model: GADClassifier, features: torch.Tensor, steps: list[int]) -> None:
        out = model.generate(features, constrained=True)
        encode = model.tokenizer.encode
        steps.append(max(len(encode(" " + t, add_special_tokens=False)) for t in out.texts))

    calls: dict[tuple[str, str, int], Callable[[], object]] = {}
    steps: dict[tuple[str, int], list[int]] = {}
    for batch in sorted(set(bench.latency_batches) | {1}):
        gen = torch.Generator().manual_seed(batch)
        features = torch.randn(batch, size, bench.feature_dim, generator=gen).to(bench.device)
        for lora in LORA_STATES:
            if batch in bench.latency_batches:
                steps[lora, batch] = []
                calls[DECODE, lora, batch] = partial(
                    decode, decoders[lora], features, steps[lora, batch]
                )
                calls[HEAD, lora, batch] = partial(heads[lora].class_logits, features)
            else:  # batch 1 for the throughput table only
                calls[NAIVE, lora, batch] = partial(heads[lora].class_logits, features)
    with torch.inference_mode():
        runs = _interleaved(calls, bench.repeats, sync)
    rows = []
    for (path, lora, batch), times in runs.items():
        note = ""
        if path == DECODE:  # + 1: the end of sequence
            note = f"{statistics.mean(steps[lora, batch]) + 1:.1f} decode steps"
        rows.append(Timing(spec, path, lora, batch, statistics.median(times), times, note))
    del generative, decoders
    if cuda:
        torch.cuda.empty_cache()
    if bench.onnx:
        rows += _onnx_rows(spec, heads[MERGED], bench)
    return rows


def _onnx_rows(spec: str, model: GADClassifier, bench: EngineBench) -> list[Timing]:
    import onnxruntime as ort

    from model.export.head import export_head

    model = merge_head(model.float().cpu())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "head.onnx"
        export_head(model, path)
        options = ort.SessionOptions()
        if bench.threads:
            options.intra_op_num_threads = bench.threads
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        size = bench.long_frames + bench.short_frames
        for batch in bench.engine_batches:
            rng = np.random.default_rng(batch)
            feed = {
                "features": rng.standard_normal((batch, size, bench.feature_dim), np.float32),
                "mask": np.ones((batch, size), np.int64),
            }
            runs = _median_time(lambda f=feed: session.run(None, f), bench.repeats, lambda: None)
            rows.append(Timing(spec, ONNX, MERGED, batch, statistics.median(runs), runs))
    return rows


def _find(
    rows: list[Timing], backbone: str, paths: tuple[str, ...], lora: str, batch: int
) -> Timing | None:
    key = (backbone, lora, batch)
    return next((r for r in rows if (r.backbone, r.lora, r.batch) == key and r.path in paths), None)


def render_engine_tables(rows: list[Timing], bench: EngineBench) -> str:
    threads = bench.threads or torch.get_num_threads()
    where = (
        f"GPU {torch.cuda.get_device_name()} ({bench.dtype})"
        if bench.device.startswith("cuda")
        else f"CPU {cpu_name()}, {threads} thread{'s' * (threads != 1)} ({bench.dtype})"
    )
    backbones = list(dict.fromkeys(r.backbone for r in rows))
    lines = [
        f"Window {bench.long_frames} long + {bench.short_frames} short, {bench.feature_dim}-d "
        f"features, {len(THUMOS_CLASSES)} THUMOS classes, LoRA r=128; median of "
        f"{bench.repeats} runs after a warm-up. {where}; torch {torch.__version__}.",
        "",
        "**Per-frame latency, like with like** (one window per frame): constrained greedy "
        "decoding with a KV cache vs the one-pass [CLS] head, same backbone, window and batch, "
        "both in PyTorch eager and both in the same LoRA state: *adapters* (unmerged, as "
        "trained) or *merged* (decoding: every adapter merged, lm_head's included; head: "
        "what head.onnx and the torch backend run).",
        "",
        "| backbone | batch | LoRA | generative ms per window | head ms per window | "
        "head vs generative | note |",
        "|---|---:|---|---:|---:|---:|---|",
    ]
    for backbone in backbones:
        for batch in sorted(bench.latency_batches):
            for lora in LORA_STATES:
                decode = _find(rows, backbone, (DECODE,), lora, batch)
                head = _find(rows, backbone, (HEAD,), lora, batch)
                if decode is None or head is None:
                    continue
                lines.append(
                    f"| {backbone} | {batch} | {lora} | {decode.per_window_ms:.1f} | "
                    f"{head.per_window_ms:.1f} | {decode.median_s / head.median_s:.2f}× | "
                    f"{decode.note} |"
                )
    engine = [r for r in rows if r.path == ONNX]
    if not engine:
        return "\n".join(lines)
    lines += [
        "",
        "**The served head**: head.onnx in onnxruntime vs the same head in PyTorch, both with "
        "LoRA merged, batch 1 (no decoding ratio: no decoder runs in onnxruntime here).",
        "",
        "| backbone | head, PyTorch, merged ms | head.onnx, onnxruntime ms | "
        "onnxruntime vs PyTorch |",
        "|---|---:|---:|---:|",
    ]
    for backbone in backbones:
        torch_head = _find(rows, backbone, (HEAD, NAIVE), MERGED, 1)
        served = _find(rows, backbone, (ONNX,), MERGED, 1)
        if torch_head and served:
            lines.append(
                f"| {backbone} | {1e3 * torch_head.median_s:.1f} | {1e3 * served.median_s:.1f} | "
                f"{torch_head.median_s / served.median_s:.2f}× |"
            )
    lines += [
        "",
        "**Throughput**: the naive loop (PyTorch, full recompute per frame, batch 1) vs the "
        "engine (head.onnx in onnxruntime) at the batch the micro-batcher forms. The ratio is "
        "against the naive loop with LoRA merged, the engine's state; the authors' loop "
        "(adapters unmerged) is shown for reference.",
        "",
        "| backbone | runner | LoRA | batch | windows/s | vs naive loop, merged |",
        "|---|---|---|---:|---:|---:|",
    ]
    for backbone in backbones:
        naive = {lora: _find(rows, backbone, (HEAD, NAIVE), lora, 1) for lora in LORA_STATES}
        base = naive[MERGED]
        if base is None:
            continue
        for lora, r in naive.items():
            if r is not None:
                ratio = f"{r.windows_per_s / base.windows_per_s:.2f}×" if lora == MERGED else "—"
                lines.append(
                    f"| {backbone} | naive loop (PyTorch) | {lora} | 1 | {r.windows_per_s:.1f} | "
                    f"{ratio} |"
                )
        for r in (r for r in engine if r.backbone == backbone):
            lines.append(
                f"| {backbone} | engine (onnxruntime) | {r.lora} | {r.batch} | "
                f"{r.windows_per_s:.1f} | {r.windows_per_s / base.windows_per_s:.2f}× |"
            )
    return "\n".join(lines)
