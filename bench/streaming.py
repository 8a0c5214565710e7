"""The streaming step against the full window, same model, same threads, same batch.

For each backbone: one GAD model, a window of W frames for both modes — the windowed head
re-reads the prompt and all W frames + [CLS] per frame, the step reads one frame + its
[CLS] against the K/V rings — and the median ms per frame at each batch size, timed
round-robin. Runners, each like with like:
  pytorch          LoRA unmerged on both sides (the training forward)
  pytorch, merged  LoRA merged on both sides (what GAD_BACKEND=torch serves)
  onnxruntime      what the service runs: head.onnx vs step.onnx, LoRA merged on both sides
`python -m bench.streaming --backbone tiny --backbone smollm2-135m --threads 2`; on a GPU
(scripts/gpu_bench.sh) `--device cuda --dtype bfloat16 --merged --runner pytorch`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.engine import _interleaved
from model.backbone import resolve_backbone
from model.config import ModelConfig
from model.gad import GADClassifier
from model.streaming.runner import StreamingGAD
from runtime.system import cpu_name


@dataclass(frozen=True)
class StepRow:
    backbone: str
    window: int
    batch: int
    window_ms: float
    step_ms: float
    runner: str = "pytorch"

    @property
    def speedup(self) -> float:
        return self.window_ms / self.step_ms


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _model(spec: str, window: int, feature_dim: int, dtype: str = "float32") -> GADClassifier:
    config = ModelConfig(
        backbone=spec,
        kind="gad",
        feature_dim=feature_dim,
        class_names=tuple(f"action {i}" for i in range(22)),
        long_frames=0,
        short_frames=window,
    )
    torch.manual_seed(0)
    return GADClassifier(config, resolve_backbone(spec, dtype=DTYPES[dtype])).eval()


def bench_steps(
    spec: str,
    *,
    window: int,
    batches: tuple[int, ...],
    repeats: int,
    feature_dim: int = 2048,
    device: str = "cpu",
    dtype: str = "float32",
    merged: bool = False,
) -> list[StepRow]:
    from model.lora import merge_for_head

    model = _model(spec, window, feature_dim, dtype)
    if merged:  # both sides: the [CLS] path with LoRA merged, as the torch backend serves
        model.lm = merge_for_head(model.lm)
        model.freeze_prefix()
    model = model.to(device).eval()
    stream = StreamingGAD(model, window)
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    runner = "pytorch, merged" if merged else "pytorch"
    rows = []
    with torch.inference_mode():
        for batch in batches:
            windows = torch.randn(batch, window, feature_dim, device=device)
            state = stream.start(batch)
            for t in range(window):  # fill the rings: a stream in its steady state
                stream.step(windows[:, t], state)
            frame = torch.randn(batch, feature_dim, device=device)
            runs = _interleaved(  # round-robin: the machine's load falls on both sides
                {
                    "window": lambda w=windows: model.class_logits(w),
                    "step": lambda f=frame, s=state: stream.step(f, s),
                },
                repeats,
                sync,
            )
            ms = {key: 1e3 * statistics.median(times) / batch for key, times in runs.items()}
            rows.append(StepRow(spec, window, batch, ms["window"], ms["step"], runner))
    return rows


def bench_onnx_steps(
    spec: str,
    *,
    window: int,
    batches: tuple[int, ...],
    repeats: int,
    threads: int | None,
    feature_dim: int = 2048,
) -> list[StepRow]:
    """head.onnx vs step.onnx of one model (LoRA merged in both), run as the service runs
    them: onnxruntime, `threads` intra-op threads, the step through runtime.stepping."""
    from model.export.graph import prepare_for_export
    from model.export.head import export_head
    from model.export.step import StepGraph, export_step
    from runtime.sessions import open_session
    from runtime.stepping import StepEngine

    model = _model(spec, window, feature_dim)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        prepare_for_export(model)  # LoRA merged (in place), for both graphs
        export_head(model, Path(tmp) / "head.onnx")
        graph = StepGraph(model, window)
        export_step(graph, Path(tmp) / "step.onnx")
        head: Any
        head, _, _ = open_session(Path(tmp) / "head.onnx", ("cpu",), threads)
        engine = StepEngine.open(
            Path(tmp) / "step.onnx",
            ring_shape=graph.ring_shape(),
            providers=("cpu",),
            threads=threads,
        )
        for batch in batches:
            rng = np.random.default_rng(batch)
            windows = rng.standard_normal((batch, window, feature_dim), np.float32)
            mask = np.ones((batch, window), np.int64)
            streams = [engine.new_state() for _ in range(batch)]
            for t in range(window):  # fill the rings: streams in their steady state
                engine.step(windows[:, t], streams)
            frame = rng.standard_normal((batch, feature_dim), np.float32)
            runs = _interleaved(
                {
                    "window": lambda w=windows, m=mask: head.run(
                        ["logits"], {"features": w, "mask": m}
                    ),
                    "step": lambda f=frame, s=streams: engine.step(f, s),
                },
                repeats,
                lambda: None,
            )
            ms = {key: 1e3 * statistics.median(times) / batch for key, times in runs.items()}
            rows.append(StepRow(spec, window, batch, ms["window"], ms["step"], "onnxruntime"))
    return rows


def render(rows: list[StepRow], repeats: int, device: str = "cpu", dtype: str = "float32") -> str:
    where = (
        f"GPU {torch.cuda.get_device_name()}"
        if device.startswith("cuda")
        else f"CPU {cpu_name()}, {torch.get_num_threads()} threads"
    )
    lines = [
        f"Streaming step vs full window, {dtype}, median of {repeats} runs timed round-robin "
        f"after a warm-up; {where}. pytorch: LoRA unmerged on both sides; pytorch, merged: "
        "LoRA merged on both sides; onnxruntime: head.onnx vs step.onnx, LoRA merged on "
        "both sides (what the service runs).",
        "",
        "| backbone | runner | window W | batch | full window ms/frame | step ms/frame | "
        "step frames/s | step speed-up |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.backbone} | {r.runner} | {r.window} | {r.batch} | {r.window_ms:.2f} | "
        f"{r.step_ms:.2f} | {1e3 / r.step_ms:.0f} | {r.speedup:.2f}× |"
        for r in rows
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", action="append", help="tiny | smollm2-135m | PATH")
    parser.add_argument("--window", type=int, action="append", help="frames (default 40, 160)")
    parser.add_argument("--batch", type=int, action="append", help="streams (default 1, 16)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--runner", action="append", choices=("pytorch", "onnxruntime"), help="default both"
    )
    parser.add_argument("--device", default="cpu", help="pytorch runner: cpu | cuda")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument(
        "--merged", action="store_true", help="pytorch runner: LoRA merged on both sides"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for spec in args.backbone or ["tiny"]:
        for window in args.window or [40, 160]:
            batches = tuple(args.batch or [1, 16])
            runners = args.runner or ["pytorch", "onnxruntime"]
            if "pytorch" in runners:
                rows += bench_steps(
                    spec,
                    window=window,
                    batches=batches,
                    repeats=args.repeats,
                    device=args.device,
                    dtype=args.dtype,
                    merged=args.merged,
                )
            if "onnxruntime" in runners:
                rows += bench_onnx_steps(
                    spec,
                    window=window,
                    batches=batches,
                    repeats=args.repeats,
                    threads=args.threads,
                )
    print(render(rows, args.repeats, args.device, args.dtype))  # noqa: T201


if __name__ == "__main__":
    main()
