"""How much the generative evaluation saves by reading each window once (issue 29's runs).

The compare's two generative rows (free decoding, the paper's; constrained, ours) need,
per window, the label log-likelihoods (mAP) and two greedy decodes. Before, each row was
its own evaluation: scores + free decode, then scores + constrained decode, each of the
four a pass over the window. Now one prefill of the window is continued by all three
(`model.prefill`, training/evaluate.py `score_windows`). Both ways are timed here on the
same windows, alternating, in one process: like with like.

    .venv/bin/python scripts/generative_eval_passes.py RUN/checkpoint --data DIR
    .venv/bin/python scripts/generative_eval_passes.py            # a tiny random model

Prints a Markdown table: ms per batch (median of --repeats), the ratio, and whether the
two ways gave the same scores and labels.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from model.gad import GADClassifier
from runtime.windowing import build_windows


def separate(model: GADClassifier, features: torch.Tensor, mask: torch.Tensor) -> tuple:
    """As the compare ran before: two evaluations, each scoring and decoding anew."""
    out = []
    for constrained in (False, True):
        scores = torch.softmax(model.label_log_likelihoods(features, mask), -1)
        out.append((scores, model.generate(features, mask, constrained=constrained).indices))
    return tuple(out)


def shared(model: GADClassifier, features: torch.Tensor, mask: torch.Tensor) -> tuple:
    """One prefill, continued by the scores and both decodes."""
    read = model.prefill(features, mask)
    scores = torch.softmax(model.label_log_likelihoods(features, mask, prefilled=read), -1)
    return tuple(
        (scores, model.generate(features, mask, constrained=flag, prefilled=read).indices)
        for flag in (False, True)
    )


def windows(args: argparse.Namespace) -> tuple[GADClassifier, torch.Tensor, torch.Tensor, str]:
    if args.checkpoint is None:
        from model.backbone import build_tiny_backbone
        from model.config import LoraSettings, ModelConfig

        torch.manual_seed(0)
        names = ("background", "open drawer", "close drawer", "open door", "close door")
        config = ModelConfig(
            backbone="tiny", kind="generative", feature_dim=16, class_names=names,
            lora=LoraSettings(rank=8, alpha=16, dropout=0.0), long_frames=8, short_frames=8,
        )  # fmt: skip
        model = GADClassifier(config, build_tiny_backbone()).eval()
        gen = torch.Generator().manual_seed(1)
        features = torch.randn(args.batch, 16, 16, generator=gen)
        return model, features, torch.ones(args.batch, 16, dtype=torch.long), "tiny, random"
    from model.checkpoint import load_checkpoint
    from training.data_info import load_data_info
    from training.dataset import load_split

    model = load_checkpoint(args.checkpoint).eval()
    if model.config.kind != "generative":
        raise SystemExit(f"{args.checkpoint} is {model.config.kind}, not generative")
    video = load_split(load_data_info(args.data), "test", limit=1)[0]
    frames = np.arange(min(args.batch, len(video)))
    rows, mask = build_windows(video.features, frames, model.config.window)
    return model, torch.from_numpy(rows), torch.from_numpy(mask).long(), str(args.checkpoint)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, nargs="?", help="a generative checkpoint")
    parser.add_argument("--data", type=Path, help="its dataset (the first test video's frames)")
    parser.add_argument("--batch", type=int, default=64, help="windows per batch (eval's 64)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.checkpoint is not None and args.data is None:
        parser.error("a checkpoint needs --data")
    model, features, mask, what = windows(args)
    times: dict[str, list[float]] = {"separate": [], "shared": []}
    results = {}
    with torch.no_grad():
        for _ in range(args.repeats + 1):  # the first round warms up, untimed
            for name, way in (("separate", separate), ("shared", shared)):
                start = time.perf_counter()
                results[name] = way(model, features, mask)
                times[name].append((time.perf_counter() - start) * 1000)
    same = all(
        torch.allclose(a[0], b[0], atol=1e-5) and a[1] == b[1]
        for a, b in zip(results["separate"], results["shared"], strict=True)
    )
    ms = {name: statistics.median(t[1:]) for name, t in times.items()}
    sys.stdout.write(
        f"{what}: {features.shape[0]} windows of {features.shape[1]} rows, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of "
        f"{args.repeats}\n\n"
        "| generative evaluation, per batch | window passes | ms | vs separate |\n"
        "|---|---:|---:|---:|\n"
        f"| separate (scores + free, scores + constrained) | 4 | {ms['separate']:.0f} | 1.00x |\n"
        f"| one prefill shared | 1 | {ms['shared']:.0f} | "
        f"{ms['separate'] / ms['shared']:.2f}x faster |\n"
        f"\nsame scores and labels both ways: {'yes' if same else 'NO'}\n"
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
