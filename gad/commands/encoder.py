"""`gad bench encoder`: frame-encoder throughput, PyTorch and onnxruntime.

Torch is imported only inside the handlers, so `gad --help` stays light.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gad.output import emit_table

if TYPE_CHECKING:
    import numpy as np

    from model.encoders import FrameEncoder

DEFAULT_BATCHES = (1, 16)
FRAME_HEIGHT, FRAME_WIDTH = 480, 640


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def register(
    commands: argparse._SubParsersAction, groups: dict[str, argparse._SubParsersAction]
) -> None:
    bench = groups["bench"].add_parser(
        "encoder",
        help="frames/s of the frame encoders, PyTorch vs onnxruntime",
        description="Load each frame encoder, export it to ONNX in a temporary folder (checked "
        "against PyTorch), and time 640×480 camera-like frames at each batch size: cv2 "
        "preprocessing, the PyTorch encoder and the onnxruntime (CPU) encoder, as frames/s, "
        "median of --repeats runs after one warm-up. Prints a Markdown table. Run it on an "
        "otherwise idle machine: PyTorch's OpenMP threads slow down badly when other "
        "processes share the cores.",
    )
    bench.add_argument(
        "--encoder",
        action="append",
        help="efficientnet-lite0 | resnet50:PATH | dinov2:PATH "
        "(repeatable; default: efficientnet-lite0)",
    )
    bench.add_argument(
        "--batch",
        type=_positive,
        action="append",
        help="frames per call (repeatable; default: 1 and 16)",
    )
    bench.add_argument("--repeats", type=_positive, default=5, help="timed runs (default 5)")
    bench.add_argument(
        "--threads", type=_positive, default=None, help="CPU threads for torch and onnxruntime"
    )
    bench.add_argument("--out", type=Path, default=None, help="also write the table here")
    bench.set_defaults(handler=run_bench_encoder)


@dataclass(frozen=True)
class EncoderRow:
    encoder: str
    feature_dim: int
    batch: int
    preprocess_fps: float
    torch_fps: float
    onnx_fps: float
    max_abs_diff: float


def run_bench_encoder(args: argparse.Namespace) -> int:
    import torch

    from model.encoders import DEFAULT_ENCODER, load_encoder
    from model.export.encoder import export_encoder, onnx_session, sample_frames

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    batches = args.batch or list(DEFAULT_BATCHES)
    frames = sample_frames(max(batches), height=FRAME_HEIGHT, width=FRAME_WIDTH)
    rows = []
    for spec in args.encoder or [DEFAULT_ENCODER]:
        encoder = load_encoder(spec)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "encoder.onnx"
            diff = export_encoder(encoder, path, frames=frames)["max_abs_diff"]
            session = onnx_session(path, threads=threads)
            rows += [
                time_encoder(encoder, session, frames[:b], args.repeats, diff) for b in batches
            ]
    table = render_encoder_table(rows, repeats=args.repeats, threads=threads)
    return emit_table(table, args.out)


def time_encoder(
    encoder: FrameEncoder, session: Any, frames: np.ndarray, repeats: int, diff: float
) -> EncoderRow:
    """Frames/s of preprocessing, the PyTorch module and the onnxruntime session on `frames`.

    Each is timed in a block of its own: taking turns run by run would let onnxruntime's
    spinning worker threads steal the cores from the PyTorch run after them."""
    import torch

    from model.export.encoder import INPUT_NAME, OUTPUT_NAME

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


def render_encoder_table(rows: list[EncoderRow], *, repeats: int, threads: int) -> str:
    import onnxruntime
    import torch

    from runtime.system import cpu_name

    lines = [
        f"Frame encoders on {FRAME_WIDTH}×{FRAME_HEIGHT} uint8 RGB frames: frames/s, median of "
        f"{repeats} runs after 1 warm-up (preprocess = runtime/preprocess.py, cv2)",
        f"CPU: {cpu_name()}, {threads} threads, torch {torch.__version__}, "
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
