"""The serving image runs without torch and without the training code.

The tree is rebuilt from what `docker/Dockerfile.cpu` really COPYs into /src, and every
module of it is imported — then `gad serve` answers /classify — in a Python where the torch
stack and the packages the image leaves out (`model`, `training`) cannot be imported. So a
torch import that creeps into runtime/ or service/, or a serving command that reaches for
training code, fails here, not on a user's GPU host.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from bench.launch import free_port
from tests.deploy.validators import DOCKER, ROOT, dockerfile_instructions

# Installed in the venv, absent from the serving image (or never to be used by it).
BLOCKED = (
    "torch", "transformers", "peft", "safetensors", "accelerate", "onnx", "onnxscript",
    "sklearn", "matplotlib", "tqdm", "model", "training",
)  # fmt: skip
OURS = ("gad", "runtime", "service", "bench", "model", "training")

# Installs the blocker, then runs the module or code given on the command line.
BLOCKER = textwrap.dedent(
    """
    import importlib.abc, runpy, sys
    BLOCKED = set({blocked!r})

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}} (not in the serving image)")
            return None

    sys.meta_path.insert(0, Blocker())
    if sys.argv[1] == "-c":
        exec(sys.argv[2])
    else:
        sys.argv = ["gad", *sys.argv[1:]]
        runpy.run_module("gad.cli", run_name="__main__", alter_sys=True)
    """
)


def image_tree(dest: Path) -> Path:
    """/src of the serving image: the builder stage's COPYs from the build context."""
    workdir = None
    for ins in dockerfile_instructions((DOCKER / "Dockerfile.cpu").read_text()):
        if ins.keyword == "FROM":
            workdir = None
        elif ins.keyword == "WORKDIR":
            workdir = ins.args.strip()
        elif ins.keyword == "COPY" and workdir == "/src" and "--from=" not in ins.args:
            *sources, target = ins.args.split()
            into = target.endswith("/") or len(sources) > 1
            for source in sources:
                src = ROOT / source
                if src.is_dir():  # COPY DIR TARGET: the folder's contents into TARGET
                    shutil.copytree(
                        src, dest / target, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    out = dest / target / src.name if into else dest / target
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(src, out)
    return dest


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = image_tree(tmp_path_factory.mktemp("image") / "src")
    (root.parent / "blocker.py").write_text(BLOCKER.format(blocked=BLOCKED))
    return root


def run_blocked(image: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(image), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, str(image.parent / "blocker.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=image.parent,
    )


def test_the_image_holds_no_training_code_and_a_torch_free_core(image: Path) -> None:
    packages = sorted(p.name for p in image.iterdir() if (p / "__init__.py").is_file())
    assert packages == ["bench", "gad", "runtime", "service"]
    torch_import = re.compile(r"^\s*(import|from) (torch|transformers|peft)\b", re.MULTILINE)
    for path in [*(image / "runtime").rglob("*.py"), *(image / "service").rglob("*.py")]:
        assert not torch_import.search(path.read_text()), f"{path.relative_to(image)}: torch"


def test_every_serving_module_imports_without_torch(image: Path) -> None:
    modules = sorted(
        ".".join(path.relative_to(image).with_suffix("").parts).removesuffix(".__init__")
        for path in image.rglob("*.py")
        if path.name != "__main__.py"
    )
    assert {"runtime.engine", "service.app", "bench.load", "gad.commands.serve"} <= set(modules)
    code = textwrap.dedent(
        f"""
        import importlib, sys
        for name in {modules!r}:
            importlib.import_module(name)
        ours = [m for m in sys.modules if m.split(".")[0] in {OURS!r}]
        outside = [m for m in ours if not (getattr(sys.modules[m], "__file__", None) or "")
                   .startswith({str(image)!r})]
        assert not outside, outside
        heavy = [m for m in sys.modules if m.split(".")[0] in {BLOCKED!r}]
        assert not heavy, heavy
        print(len(ours))
        """
    )
    done = run_blocked(image, "-c", code)
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[-1]) == len(modules)


@pytest.mark.parametrize(
    "argv",
    [
        ["serve"],
        ["stream"],
        ["bench", "service"],
        ["bench", "load"],
        ["bench", "soak"],
        ["bench", "delivery"],
    ],
    ids=" ".join,
)
def test_serving_commands_parse_without_torch(image: Path, argv: list[str]) -> None:
    done = run_blocked(image, *argv, "--help")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("usage: gad " + " ".join(argv))


def test_a_training_command_in_the_image_says_what_is_missing(image: Path) -> None:
    done = run_blocked(image, "train", "data", "--out", "runs/x")
    assert done.returncode == 2
    assert "gad train: error:" in done.stderr
    assert "training install" in done.stderr
    assert "Traceback" not in done.stderr


def test_gad_serve_answers_without_torch(image: Path, tiny_package: tuple[Path, Path]) -> None:
    port = free_port()
    env = os.environ | {"PYTHONPATH": str(image)}
    argv = ["serve", "--model", str(tiny_package[1]), "--port", str(port), "--log-format", "text"]
    log = image.parent / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, str(image.parent / "blocker.py"), *argv],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=image.parent,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        manifest = json.loads((tiny_package[1] / "manifest.json").read_text())
        rows = np.random.default_rng(0).normal(size=(12, manifest["feature_dim"]))
        request = urllib.request.Request(
            f"{url}/v1/classify",
            data=json.dumps({"fps": manifest["fps"], "features": rows.tolist()}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        assert len(answer["frames"]) == 12
        assert {frame["label"] for frame in answer["frames"]} <= set(manifest["classes"])
    finally:
        process.terminate()
        process.wait(timeout=20)
