"""The streaming step against the full window, in PyTorch, same model, same threads.

For each backbone: one GAD model (LoRA unmerged on both sides), a window of W frames for
both modes — the windowed head re-reads the prompt and all W frames + [CLS] per frame,
the step reads one frame + its [CLS] against the K/V rings — and the median ms per frame
at each batch size. `python -m bench.streaming --backbone tiny --backbone smollm2-135m`.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass

import torch

from bench.engine import _interleaved
from model.backbone import resolve_backbone
from model.config import ModelConfig
from model.gad import GADClassifier
from model.streaming import StreamingGAD
from runtime.system import cpu_name


@dataclass(frozen=True)
class StepRow:
    backbone: str
    window: int
    batch: int
    window_ms: float
    step_ms: float

    @property
    def speedup(self) -> float:
        return self.window_ms / self.step_ms


def bench_steps(
    spec: str, *, window: int, batches: tuple[int, ...], repeats: int, feature_dim: int = 2048
) -> list[StepRow]:
    config = ModelConfig(
        backbone=spec,
        kind="gad",
        feature_dim=feature_dim,
        class_names=tuple(f"action {i}" for i in range(22)),
        long_frames=0,
        short_frames=window,
    )
    model = GADClassifier(config, resolve_backbone(spec)).eval()
    stream = StreamingGAD(model, window)
    rows = []
    with torch.inference_mode():
        for batch in batches:
            windows = torch.randn(batch, window, feature_dim)
            state = stream.start(batch)
            for t in range(window):  # fill the rings: a stream in its steady state
                stream.step(windows[:, t], state)
            frame = torch.randn(batch, feature_dim)
            runs = _interleaved(  # round-robin: the machine's load falls on both sides
                {
                    "window": lambda w=windows: model.class_logits(w),
                    "step": lambda f=frame, s=state: stream.step(f, s),
                },
                repeats,
                lambda: None,
            )
            ms = {key: 1e3 * statistics.median(times) / batch for key, times in runs.items()}
            rows.append(StepRow(spec, window, batch, ms["window"], ms["step"]))
    return rows


def render(rows: list[StepRow], repeats: int) -> str:
    lines = [
        f"Streaming step vs full window, PyTorch fp32, LoRA unmerged on both sides, median of "
        f"{repeats} timed round-robin after a warm-up; CPU {cpu_name()}, "
        f"{torch.get_num_threads()} threads",
        "",
        "| backbone | window W | batch | full window ms/frame | step ms/frame | step speed-up |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.backbone} | {r.window} | {r.batch} | {r.window_ms:.2f} | {r.step_ms:.2f} | "
        f"{r.speedup:.1f}× |"
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
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for spec in args.backbone or ["tiny"]:
        for window in args.window or [40, 160]:
            rows += bench_steps(
                spec, window=window, batches=tuple(args.batch or [1, 16]), repeats=args.repeats
            )
    print(render(rows, args.repeats))  # noqa: T201


if __name__ == "__main__":
    main()
