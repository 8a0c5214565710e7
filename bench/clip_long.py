"""What long clips and several tokens per row cost: the clip model at the paper's COIN
shape (k tokens per row joined by ",", clips of up to 1,200 rows at 2 fps) against one
token per row, on the CPU.

    nice -n 5 .venv/bin/python -m bench.clip_long --out /tmp/clip-long.md

Per (k, rows): one training step (a gad clip model, batch 1, step question: forward with
the LM loss, backward, AdamW), the PyTorch three-question pass (`clip_logits`, no grad)
and clip.onnx in onnxruntime on the same unpadded clip (what /classify runs); medians of
`repeats` after a warm-up, each (k, rows) timed round-robin, and the process's peak
resident memory during the warm-up. clip.onnx is exported once per k (max_frames = the
longest clip; `time` is dynamic), its export + verification timed once. Weights are
random: time does not depend on their values.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from model.backbone import resolve_backbone
from model.checkpoint import save_checkpoint
from model.clip import STEP, ClipClassifier
from model.config import LoraSettings, ModelConfig
from runtime.engine import ClipEngine, ClipModel
from runtime.system import cpu_name

STEPS = tuple(f"step {i}" for i in range(20))
TASKS = tuple(f"task {i}" for i in range(5))


@dataclass(frozen=True)
class LongClipBench:
    backbone: str = "tiny"
    feature_dim: int = 256
    tokens: tuple[int, ...] = (1, 4)
    rows: tuple[int, ...] = (32, 300, 1200)
    repeats: int = 3
    threads: int | None = None


@dataclass(frozen=True)
class LongClipTiming:
    tokens: int
    rows: int
    sequence: int  # LLM tokens of the step question's training sequence
    train_ms: float
    torch_ms: float  # clip_logits: the three questions batched, no grad
    onnx_ms: float  # clip.onnx, the same clip
    export_s: float  # clip.onnx export + verification for this k (once per k)
    # The process's peak resident memory during each call's first run (GB): an upper
    # bound (it includes the models and what earlier calls left in the allocators).
    train_gb: float
    torch_gb: float
    onnx_gb: float


def _model(bench: LongClipBench, tokens: int) -> ClipClassifier:
    config = ModelConfig(
        backbone=bench.backbone,
        kind="gad",
        feature_dim=bench.feature_dim,
        class_names=STEPS,
        background_index=None,
        task_names=TASKS,
        clip_frames=max(bench.rows),
        tokens_per_frame=tokens,
        lora=LoraSettings(rank=8, alpha=16, dropout=0.0),
    )
    torch.manual_seed(0)
    return ClipClassifier(config, resolve_backbone(bench.backbone))


def _rss_gb() -> float:
    """This process's resident memory now (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
    except OSError:
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e9


def _peak_rss_gb(fn: Callable[[], object]) -> float:
    """The process's peak resident memory while `fn` runs, sampled every 2 ms."""
    peak, done = [_rss_gb()], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_gb())
            done.wait(0.002)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    try:
        fn()
    finally:
        done.set()
        watcher.join()
    return max(peak[0], _rss_gb())


def _round_robin(
    calls: dict[str, Callable[[], object]], repeats: int
) -> tuple[dict[str, float], dict[str, float]]:
    """(median ms, peak GB during the warm-up) of each call, the calls taking turns."""
    memory = {name: _peak_rss_gb(fn) for name, fn in calls.items()}
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            tick = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - tick)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}, memory


def _calls(
    model: ClipClassifier, engine: ClipModel, clip: np.ndarray
) -> dict[str, Callable[[], object]]:
    """A training step, the PyTorch three-question pass and clip.onnx on one clip."""
    features = torch.from_numpy(clip)
    mask = torch.ones(clip.shape[:2], dtype=torch.long)
    labels, questions = torch.tensor([1]), torch.tensor([STEP])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def train_step() -> None:
        model.train()
        loss = model(features, mask, labels, questions, labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def three_questions() -> None:
        model.eval()
        with torch.inference_mode():
            model.clip_logits(features, mask)

    def onnx() -> None:
        engine.classify(clip, mask.numpy())

    return {"train": train_step, "torch": three_questions, "onnx": onnx}


def _export(model: ClipClassifier, folder: Path) -> tuple[float, ClipModel]:
    """clip.onnx of `model` in a clip-only package: (seconds, a ClipEngine on it)."""
    from model.export.package import export_package

    save_checkpoint(model, folder / "ckpt", extra={"data": {"fps": 2.0}})
    tick = time.perf_counter()
    result = export_package(folder / "ckpt", folder / "models", name="clip")
    seconds = time.perf_counter() - tick
    threads = torch.get_num_threads()
    return seconds, ClipEngine.load(result.folder, providers=["cpu"], threads=threads)


def run_long_clip_bench(bench: LongClipBench) -> list[LongClipTiming]:
    if bench.threads:
        torch.set_num_threads(bench.threads)
    gen = np.random.default_rng(0)
    clips = {n: gen.normal(size=(1, n, bench.feature_dim)).astype(np.float32) for n in bench.rows}
    timings = []
    for tokens in bench.tokens:
        with tempfile.TemporaryDirectory() as tmp:
            export_s, engine = _export(_model(bench, tokens), Path(tmp))
            model = _model(bench, tokens)  # export merged LoRA in place: time a fresh one
            calls = {
                (rows, what): fn
                for rows, clip in clips.items()
                for what, fn in _calls(model, engine, clip).items()
            }
            keys = list(calls)
            ms, gb = _round_robin({str(k): calls[k] for k in keys}, bench.repeats)
        for rows in bench.rows:
            timings.append(
                LongClipTiming(
                    tokens,
                    rows,
                    model.sequence_tokens(rows),
                    ms[str((rows, "train"))],
                    ms[str((rows, "torch"))],
                    ms[str((rows, "onnx"))],
                    export_s,
                    gb[str((rows, "train"))],
                    gb[str((rows, "torch"))],
                    gb[str((rows, "onnx"))],
                )
            )
    return timings


def render_long_clip_bench(rows: list[LongClipTiming], bench: LongClipBench) -> str:
    threads = torch.get_num_threads()
    base = {r.rows: r for r in rows if r.tokens == 1}
    lines = [
        f"Backbone `{bench.backbone}`, {bench.feature_dim}-d rows, batch 1, CPU {cpu_name()}, "
        f"{threads} thread{'s' * (threads != 1)}, torch {torch.__version__}; median of "
        f'{bench.repeats} after a warm-up. k = tokens per row (k > 1: "," between rows).',
        "",
        "| k | rows | LLM tokens | train step ms | torch 3 questions ms | clip.onnx ms | "
        "clip.onnx vs k=1 | peak GB train / torch / onnx | export + verify s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = r.onnx_ms / base[r.rows].onnx_ms if r.rows in base else float("nan")
        lines.append(
            f"| {r.tokens} | {r.rows} | {r.sequence} | {r.train_ms:.0f} | {r.torch_ms:.0f} | "
            f"{r.onnx_ms:.0f} | {ratio:.1f}× | {r.train_gb:.1f} / {r.torch_gb:.1f} / "
            f"{r.onnx_gb:.1f} | {r.export_s:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="tiny")
    parser.add_argument("--feature-dim", type=int, default=256)
    parser.add_argument("--tokens", default="1,4", help="tokens per row to compare")
    parser.add_argument("--rows", default="32,300,1200", help="clip lengths in rows")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    bench = LongClipBench(
        backbone=args.backbone,
        feature_dim=args.feature_dim,
        tokens=tuple(int(k) for k in args.tokens.split(",")),
        rows=tuple(int(n) for n in args.rows.split(",")),
        repeats=args.repeats,
        threads=args.threads,
    )
    table = render_long_clip_bench(run_long_clip_bench(bench), bench)
    sys.stdout.write(table + "\n")
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
