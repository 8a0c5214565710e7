"""The default demo model: the rendered action benchmark → EfficientNet-Lite0 features →
a tiny GAD model → a model package, built once and cached. `gad serve` with no --model
serves it; `make setup` builds it (about 5 minutes on 2 cores, then cached).

The recipe is a sequence of ordinary `gad` commands (printed as they run, so anyone can
rerun a step by hand). A stamp records the recipe; a changed recipe, or --force, rebuilds.
Each step is itself resumable: render and extract skip what is done.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

from runtime.cache_files import default_cache_dir

DEMO_NAME = "demo"
RENDER = ["--videos", "48", "--seconds", "40", "--seed", "0"]
EXTRACT = ["--encoder", "efficientnet-lite0", "--fps", "4"]
TRAIN = [
    "--kind", "gad", "--backbone", "tiny", "--long", "32", "--short", "8",
    "--epochs", "20", "--batch-size", "16", "--lr", "1e-3",
    "--lora-rank", "16", "--lora-alpha", "32", "--seed", "0",
]  # fmt: skip
STAMP = "demo.json"


def recipe_id() -> str:
    text = json.dumps([RENDER, EXTRACT, TRAIN, 1])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def demo_root(cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / "demo"


def package_dir(root: Path) -> Path:
    return root / "models" / DEMO_NAME


def demo_video(root: Path) -> Path:
    """The first test video of the demo's rendered benchmark (`gad bench service`, `load`
    and `soak` stream it by default)."""
    render = root / "render"
    session = json.loads((render / "split.json").read_text())["test"][0]
    return render / "videos" / f"{session}.mp4"


def is_built(root: Path) -> bool:
    stamp = root / STAMP
    if not stamp.is_file() or not (package_dir(root) / "1" / "manifest.json").is_file():
        return False
    try:
        return json.loads(stamp.read_text()).get("recipe") == recipe_id()
    except json.JSONDecodeError:
        return False


def build_demo(root: Path, *, force: bool = False) -> Path:
    """Build (or find) the demo package under `root`; returns its folder."""
    from gad.cli import main

    if is_built(root) and not force:
        _say(f"demo model up to date: {package_dir(root)}")
        return package_dir(root)
    # Rendering and extraction resume; training and export start over.
    for part in ("run", "models", STAMP):
        path = root / part
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(True)
    render, data, run = root / "render", root / "features", root / "run"
    steps = [
        ["data", "render", "--out", str(render), *RENDER],
        [
            "data", "extract", str(render / "videos"),
            "--annotations", str(render / "annotations.csv"),
            "--split", str(render / "split.json"), "--out", str(data), *EXTRACT,
        ],
        ["train", str(data), "--out", str(run), *TRAIN],
        ["eval", str(run), "--data", str(data), "--plots", "2"],
        [
            "export", str(run), "--out", str(root / "models"), "--name", DEMO_NAME,
            "--data", str(data), "--force",
        ],
    ]  # fmt: skip
    started = time.monotonic()
    timings = {}
    for argv in steps:
        _say(f"\n$ gad {' '.join(argv)}")
        step = time.monotonic()
        code = main(argv)
        if code:
            sys.stderr.write(f"demo build failed at: gad {' '.join(argv[:2])}\n")
            raise SystemExit(code)
        timings[" ".join(argv[:2])] = round(time.monotonic() - step, 1)
    total = round(time.monotonic() - started, 1)
    stamp = {"recipe": recipe_id(), "seconds": total, "steps": timings}
    (root / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
    _say(f"\ndemo model built in {total:.0f} s: {package_dir(root)}")
    return package_dir(root)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
