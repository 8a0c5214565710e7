"""Issue 27's target for a taught action, measured: `gad teach train` run as the service
runs it (a subprocess, JSON lines), its wall time, the held-out figures it writes into the
manifest, and the new version scored on more held-out examples (other cameras).

    python docs/teach/mocap_examples.py --out /tmp/teach/roll --examples 3
    python docs/teach/mocap_examples.py --out /tmp/teach/roll-test --examples 10 \\
        --cameras test --seed 100
    OMP_NUM_THREADS=1 nice -n 5 python docs/teach/measure.py --examples /tmp/teach/roll \\
        --extra /tmp/teach/roll-test --base CACHE/demo-pose/models/demo-pose/1 \\
        --out /tmp/teach/models/demo-pose -- --steps 300
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from runtime.manifest import read_package
from training.teach import example_accuracy, load_examples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=Path, required=True)
    parser.add_argument("--extra", type=Path, default=None, help="more held-out examples")
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("rest", nargs="*", help="after --: more gad teach train flags")
    args = parser.parse_args()
    command = [
        sys.executable, "-m", "gad", "teach", "train", "--examples", str(args.examples),
        "--base", str(args.base), "--out", str(args.out), "--json", *args.rest,
    ]  # fmt: skip
    started = time.monotonic()
    lines = subprocess.run(
        command, capture_output=True, text=True, env=os.environ.copy(), check=False
    ).stdout.splitlines()
    wall = time.monotonic() - started
    last = json.loads(lines[-1])
    if "result" not in last:
        sys.exit(f"teach failed: {last}")
    result = last["result"]
    report = {
        "command": " ".join(command[1:]),
        "wall_s": round(wall, 1),
        "seconds": result["seconds"],
        "steps": result["steps"],
        "held_out_accuracy": result["held_out_accuracy"],
        "old_map": result["old_map"],
        "progress_lines": len(lines),
    }
    package = read_package(Path(result["folder"]))
    if args.extra is not None:
        background = package.classes[package.background_index or 0]
        extra, classes = load_examples(args.extra, package.classes, background, seed=0)
        videos = extra.train + extra.held_out
        accuracy, logits, labels = example_accuracy(package, videos, package.classes)
        predicted = logits.argmax(1)
        confused = {}
        for c in sorted(set(labels.tolist())):
            wrong = predicted[(labels == c) & (predicted != c)]
            confused[classes[c]] = {
                package.classes[k]: int(n)
                for k, n in zip(*np.unique(wrong, return_counts=True), strict=True)
            }
        report["extra_held_out"] = {
            "examples": len(videos), "accuracy": accuracy, "mistaken_for": confused,
        }  # fmt: skip
    sys.stdout.write(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
