"""Frame-encoder throughput (`gad bench encoder`): cv2 preprocessing, the PyTorch encoder
and its ONNX export in onnxruntime, as frames/s on camera-like 640×480 frames."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch

from model.encoders import DEFAULT_ENCODER, FrameEncoder, load_encoder
from model.export.encoder import (
    INPUT_NAME,
    OUTPUT_NAME,
    export_encoder,
    onnx_session,
    sample_frames,
)
from runtime.system import cpu_name

DEFAULT_BATCHES = (1, 16)
FRAME_HEIGHT, FRAME_WIDTH = 480, 640


@dataclass(frozen=True)
class EncoderBench:
    encoders: tuple[str, ...] = (DEFAULT_ENCODER,)  # efficientnet-lite0 | resnet50:PATH | ...
    batches: tuple[int, ...] = DEFAULT_BATCHES  # frames per call
    repeats: int = 5
    threads: int | None = None  # torch and onnxruntime CPU threads (None: torch's default)


@dataclass(frozen=True)
class EncoderRow:
    encoder: str
    feature_dim: int
    batch: int
    preprocess_fps: float
    torch_fps: float
    onnx_fps: float
    max_abs_diff: float


def run_encoder_bench(bench: EncoderBench) -> list[EncoderRow]:
    """Each encoder, exported to ONNX in a temporary folder (checked against PyTorch),
    timed at each batch size."""
    if bench.threads:
        torch.set_num_threads(bench.threads)
    threads = torch.get_num_threads()
    frames = sample_frames(max(bench.batches), height=FRAME_HEIGHT, width=FRAME_WIDTH)
    rows = []
    for spec in bench.encoders:
        encoder = load_encoder(spec)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "encoder.onnx"
            diff = export_encoder(encoder, path, frames=frames)["max_abs_diff"]
            session = onnx_session(path, threads=threads)
            rows += [
                time_encoder(encoder, session, frames[:b], bench.repeats, diff)
                for b in bench.batches
            ]
    return rows


def time_encoder(
    encoder: FrameEncoder, session: Any, frames: np.ndarray, repeats: int, diff: float
) -> EncoderRow:
    """Frames/s of preprocessing, the PyTorch module and the onnxruntime session on `frames`.

    Each is timed in a block of its own: taking turns run by run would let onnxruntime's
    spinning worker threads steal the cores from the PyTorch run after them."""
    pixels = encoder.preprocess.apply(frames)
    tensor = torch.from_numpy(pixels).to(encoder.device)
    runs: dict[str, Callable[[], object]] = {
        "preprocess": lambda: encoder.preprocess.apply(frames),
        "torch": lambda: encoder.module(tensor),
        "onnx": lambda: session.run([OUTPUT_NAME], {INPUT_NAME: pixels}),
    }
    with torch.inference_mode():
        seconds = median_seconds(runs, repeats)
    batch = len(frames)
    return EncoderRow(
        encoder=encoder.name,
        feature_dim=encoder.feature_dim,
        batch=batch,
        preprocess_fps=batch / seconds["preprocess"],
        torch_fps=batch / seconds["torch"],
        onnx_fps=batch / seconds["onnx"],
        max_abs_diff=diff,
    )


def median_seconds(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall time of each run over `repeats` runs after one warm-up, run by run."""
    medians = {}
    for name, run in runs.items():
        run()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        medians[name] = statistics.median(times)
    return medians


def render_encoder_table(rows: list[EncoderRow], bench: EncoderBench) -> str:
    lines = [
        f"Frame encoders on {FRAME_WIDTH}×{FRAME_HEIGHT} uint8 RGB frames: frames/s, median of "
        f"{bench.repeats} runs after 1 warm-up (preprocess = runtime/preprocess.py, cv2)",
        f"CPU: {cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"onnxruntime {onnxruntime.__version__} (CPUExecutionProvider)",
        "",
        "| encoder | D | batch | preprocess fps | PyTorch fps | onnxruntime fps | "
        "onnxruntime / PyTorch | ONNX max abs diff |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.encoder} | {r.feature_dim} | {r.batch} | {r.preprocess_fps:.0f} | "
            f"{r.torch_fps:.1f} | {r.onnx_fps:.1f} | {r.onnx_fps / r.torch_fps:.2f}× | "
            f"{r.max_abs_diff:.1e} |"
        )
    return "\n".join(lines)
