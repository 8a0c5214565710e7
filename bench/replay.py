"""What a resumed stream of a streaming package may differ by, and what a resume costs.

A replica that takes over a stream rebuilds its K/V rings by replaying the stream's last
feature rows from the cache (service/stepping.py). Replaying `reach` rows (layers x (W-1)
+ 1) is exact; fewer rows are cheaper but the rebuilt rings lack history. For each replay
length this cuts every test video at several points, resumes there, and reports the label
agreement with the uninterrupted stream over the next frames, the max |Δ probability|, and
the replay's time — through prefill.onnx when the package has it, and beside it the same
replay step by step (`replay ms, step loop`); then option (a): storing each frame's K/V
row in Redis instead (bytes per frame and per stream, fp16), which resumes exactly at no
replay cost.

    python -m bench.replay models/stream --data data/synth --frames 200 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from runtime.engine import softmax
from runtime.manifest import read_package
from runtime.stepping import StepEngine
from runtime.system import cpu_name


def measure(
    engine: StepEngine,
    videos: list[np.ndarray],
    replay: int,
    *,
    frames: int,
    cuts: int,
    stepper: StepEngine | None = None,
) -> dict[str, float]:
    agree, gaps, seconds, stepped, counted = [], [], [], [], 0
    for rows in videos:
        if len(rows) < replay + frames + 1:
            continue
        _, full = engine.replay(rows)
        full_probs = softmax(full)
        for cut in np.linspace(replay, len(rows) - frames, cuts).astype(int):
            start = time.perf_counter()
            state, _ = engine.replay(rows[cut - replay : cut])
            seconds.append(time.perf_counter() - start)
            if stepper is not None:  # the same replay one step per row, timed alongside
                start = time.perf_counter()
                stepper.replay(rows[cut - replay : cut])
                stepped.append(time.perf_counter() - start)
            after = softmax(
                np.stack([engine.step(r[None], [state])[0] for r in rows[cut:][:frames]])
            )
            reference = full_probs[cut:][:frames]
            agree.append(float((after.argmax(1) == reference.argmax(1)).mean()))
            gaps.append(float(np.abs(after - reference).max()))
            counted += 1
    return {
        "replay_rows": replay,
        "resumes": counted,
        "agreement": statistics.mean(agree) if agree else float("nan"),
        "worst_agreement": min(agree) if agree else float("nan"),
        "max_prob_diff": max(gaps) if gaps else float("nan"),
        "replay_ms": 1e3 * statistics.median(seconds) if seconds else float("nan"),
        "step_loop_ms": 1e3 * statistics.median(stepped) if stepped else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path)
    parser.add_argument("--data", type=Path, required=True, help="a dataset (test split)")
    parser.add_argument("--frames", type=int, default=200, help="frames compared after a cut")
    parser.add_argument("--cuts", type=int, default=3, help="resumes per video")
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    from training.data_info import load_data_info  # the dataset reader (training install)
    from training.dataset import load_split

    package = read_package(args.package)
    engine = StepEngine.load(package, providers=("cpu",), threads=args.threads)
    stepper = None
    if engine._prefill is not None:
        stepper = StepEngine.load(package, providers=("cpu",), threads=args.threads)
        stepper._prefill = None
    info = load_data_info(args.data)
    videos = [np.array(v.features, np.float32) for v in load_split(info, "test")[: args.videos]]
    window, reach = engine.window, engine.reach
    lengths = sorted({window - 1, 2 * (window - 1), reach // 2, reach})
    layers, _, kv_heads, ring, head_dim = engine.ring_shape
    row_bytes = layers * 2 * kv_heads * head_dim * 2
    prefill = ", prefill.onnx" if stepper is not None else ", step loop"
    print(  # noqa: T201
        f"{package.name}: W = {window}, {layers} layers, reach {reach} rows; {len(videos)} test "
        f"videos, {args.cuts} resumes each, {args.frames} frames compared; CPU {cpu_name()}, "
        f"{args.threads or 'default'} threads\n\n"
        f"| resume by | rows kept per stream | bytes per stream | replay ms (median{prefill}) | "
        "replay ms, step loop | label agreement (mean / worst) | max abs prob diff |\n"
        "|---|---:|---:|---:|---:|---:|---:|"
    )
    dim = engine.feature_dim
    for replay in lengths:
        r = measure(engine, videos, replay, frames=args.frames, cuts=args.cuts, stepper=stepper)
        print(  # noqa: T201
            f"| replaying features | {replay} | {replay * dim * 4:,} (fp32) | "
            f"{r['replay_ms']:.0f} | {r['step_loop_ms']:.0f} | {100 * r['agreement']:.2f}% / "
            f"{100 * r['worst_agreement']:.2f}% | {r['max_prob_diff']:.2g} |"
        )
    print(  # noqa: T201
        f"| K/V rows in Redis (a) | {ring} | {ring * row_bytes:,} (fp16; {row_bytes:,} per "
        "frame) | 0 | — | 100% (exact up to fp16) | — |"
    )


if __name__ == "__main__":
    main()
