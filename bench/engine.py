"""`gad bench engine`: what one forward pass per frame buys, measured side by side.

Per frame, on the same backbone and window:
  generative   greedy decoding with a KV cache, constrained to the label set (the paper's
               generative baseline; decoding stops at the label's end, so the step count
               is a real label's token count whatever the weights)
  head         GADClassifier.class_logits in PyTorch: one pass, no decoding
  head (ORT)   the exported head.onnx in onnxruntime (what the service runs)
Throughput (windows/s): the authors' naive loop (PyTorch, one full recompute per frame,
batch 1) against the engine at batch 1, 4, 16, 64 (what the micro-batcher forms when that
many streams have a frame pending).

Weights are random (LoRA r=128 as the paper): latency does not depend on their values.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

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
    merged: bool = False  # also time the head with LoRA merged (what the torch backend serves)


@dataclass
class Timing:
    backbone: str
    path: str
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
    fn()  # warm-up
    sync()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        runs.append(time.perf_counter() - start)
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
    if bench.threads:
        torch.set_num_threads(bench.threads)
    cuda = bench.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    size = bench.long_frames + bench.short_frames
    rows: list[Timing] = []

    def windows(batch: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(batch)
        return torch.randn(batch, size, bench.feature_dim, generator=gen).to(bench.device)

    generative = _build(spec, "generative", bench)
    for batch in bench.latency_batches:
        features = windows(batch)
        steps = []

        def decode(
            features: torch.Tensor = features,
            steps: list[int] = steps,
            generative: GADClassifier = generative,
        ) -> None:
            out = generative.generate(features, constrained=True)
            steps.append(
                max(
                    len(generative.tokenizer.encode(" " + t, add_special_tokens=False))
                    for t in out.texts
                )
                + 1
            )

        with torch.inference_mode():
            runs = _median_time(decode, bench.repeats, sync)
        note = f"{statistics.mean(steps):.1f} decode steps"
        rows.append(Timing(spec, "generative decode", batch, statistics.median(runs), runs, note))
    del generative
    if cuda:
        torch.cuda.empty_cache()

    gad = _build(spec, "gad", bench)
    with torch.inference_mode():
        for batch in sorted(set(bench.latency_batches) | {1}):
            features = windows(batch)
            runs = _median_time(lambda f=features: gad.class_logits(f), bench.repeats, sync)
            path = "head" if batch in bench.latency_batches else "naive loop"
            rows.append(Timing(spec, path, batch, statistics.median(runs), runs))
    if bench.merged:
        from model.export.graph import prepare_for_export

        merged = prepare_for_export(_build(spec, "gad", bench))
        with torch.inference_mode():
            for batch in bench.latency_batches:
                features = windows(batch)
                runs = _median_time(lambda f=features: merged.class_logits(f), bench.repeats, sync)
                rows.append(Timing(spec, "head, LoRA merged", batch, statistics.median(runs), runs))
        del merged
    if bench.onnx:
        rows += _onnx_rows(spec, gad, bench)
    return rows


def _onnx_rows(spec: str, model: GADClassifier, bench: EngineBench) -> list[Timing]:
    import onnxruntime as ort

    from model.export.graph import prepare_for_export
    from model.export.head import export_head

    model = prepare_for_export(model.float().cpu())
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
            rows.append(Timing(spec, "head (onnxruntime)", batch, statistics.median(runs), runs))
    return rows


def render_engine_tables(rows: list[Timing], bench: EngineBench) -> str:
    threads = bench.threads or torch.get_num_threads()
    where = (
        f"GPU {torch.cuda.get_device_name()} ({bench.dtype})"
        if bench.device.startswith("cuda")
        else f"CPU {cpu_name()}, {threads} threads ({bench.dtype})"
    )
    lines = [
        f"Window {bench.long_frames} long + {bench.short_frames} short, {bench.feature_dim}-d "
        f"features, {len(THUMOS_CLASSES)} THUMOS classes, LoRA r=128; median of "
        f"{bench.repeats} runs after a warm-up. {where}; torch {torch.__version__}.",
        "",
        "**Per-frame latency** (one window per frame):",
        "",
        "| backbone | path | batch | ms per batch | ms per window | vs generative | note |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    generative = {(r.backbone, r.batch): r for r in rows if r.path == "generative decode"}
    for r in rows:
        if r.path == "naive loop" or (r.path == "head (onnxruntime)" and r.batch != 1):
            continue
        base = generative.get((r.backbone, r.batch))
        ratio = f"{base.median_s / r.median_s:.2f}×" if base else "—"
        lines.append(
            f"| {r.backbone} | {r.path} | {r.batch} | {1e3 * r.median_s:.1f} | "
            f"{r.per_window_ms:.1f} | {ratio} | {r.note} |"
        )
    engine = [r for r in rows if r.path == "head (onnxruntime)"]
    if engine:
        lines += [
            "",
            "**Throughput**: the naive loop (PyTorch, full recompute per frame, batch 1) vs "
            "the engine (onnxruntime) at the batch the micro-batcher forms:",
            "",
            "| backbone | runner | batch | windows/s | vs naive loop |",
            "|---|---|---:|---:|---:|",
        ]
        naive = {r.backbone: r for r in rows if r.batch == 1 and r.path in ("naive loop", "head")}
        for backbone, base in naive.items():
            lines.append(
                f"| {backbone} | naive loop (PyTorch) | 1 | {base.windows_per_s:.1f} | 1.00× |"
            )
            for r in (r for r in engine if r.backbone == backbone):
                lines.append(
                    f"| {backbone} | engine (onnxruntime) | {r.batch} | {r.windows_per_s:.1f} | "
                    f"{r.windows_per_s / base.windows_per_s:.2f}× |"
                )
    return "\n".join(lines)
