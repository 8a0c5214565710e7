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


FORBIDDEN_NAMES = ("model", "training", "torch")


def names_in(source: str) -> set[str]:
    """Top-level package names a module imports or spells as a dotted string (the way an
    `importlib.import_module("model.x")` would reach past the import checker)."""
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            parts = node.value.strip().split(".")  # "model.torch_engine", not "model"
            if len(parts) > 1 and all(part.isidentifier() for part in parts):
                found.add(parts[0])
    return found


def test_no_service_module_names_the_torch_code_even_in_a_string() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(names_in(path.read_text()) & set(FORBIDDEN_NAMES))
        for path in sorted((ROOT / "service").rglob("*.py"))
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_name_check_sees_a_string_import() -> None:
    planted = 'import importlib\nengine = importlib.import_module("model.torch_engine")\n'
    assert "model" in names_in(planted)
    assert "model" in names_in('__import__("model.gad")\n')
    assert "model" not in names_in('"""The model package."""\nreply = {"model": "a.b"}\n')
