"""The import rules of pyproject.toml's [tool.importlinter] hold, and they bite.

`make lint` runs `lint-imports` on the tree; here the same contracts are run on a copy of
the packages with a planted violation each, to show that every rule catches what it names.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gad", "bench", "service", "training", "model", "runtime")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("imports")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    done = lint_imports(tree)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


PLANTS = {
    "runtime imports torch": ("runtime/windowing.py", "import torch", "never imports torch"),
    "service imports training": (
        "service/frames.py",
        "import training.metrics",
        "never imports torch",
    ),
    "model imports training": ("model/config.py", "import training.dataset", "one way"),
    "a library imports the CLI": ("training/metrics.py", "import gad.output", "one way"),
    "runtime imports the service": (
        "runtime/segments.py",
        "import service.metrics",
        "one way",
    ),
    "a cycle inside a package": (
        "runtime/windowing.py",
        "import runtime.manifest",
        "No import cycles",
    ),
}


@pytest.mark.parametrize("plant", PLANTS, ids=str)
def test_a_planted_violation_breaks_its_contract(tree: Path, plant: str) -> None:
    relative, line, contract = PLANTS[plant]
    path = tree / relative
    original = path.read_text()
    try:
        path.write_text(original + f"\n{line}  # planted\n")
        done = lint_imports(tree)
    finally:
        path.write_text(original)
    assert done.returncode != 0, f"{plant}: not caught\n{done.stdout[-2000:]}"
    assert "Broken contracts" in done.stdout, done.stdout[-3000:]
    broken = done.stdout.split("Broken contracts", 1)[1]
    assert contract in broken, done.stdout[-3000:]
    planted = line.split()[-1]  # the report names the planted import, or its module
    assert planted in broken or planted.rsplit(".", 1)[-1] in broken, broken
