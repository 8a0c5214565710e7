from __future__ import annotations

import os
from pathlib import Path

import pytest

CLASS_NAMES = ("background", "open drawer", "close drawer", "open door", "close door", "open")


@pytest.fixture(scope="session")
def gad_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where SmolLM2 is converted: $GAD_CACHE_DIR (make test sets it) or a session temp dir."""
    env = os.environ.get("GAD_CACHE_DIR")
    return Path(env) if env else tmp_path_factory.mktemp("gad-cache")


@pytest.fixture
def class_names() -> tuple[str, ...]:
    return CLASS_NAMES


@pytest.fixture(scope="session")
def tiny_package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, exported package folder) of a briefly trained tiny GAD model."""
    from model.checkpoint import save_checkpoint
    from model.export.package import export_package
    from tests.model.helpers import tiny_model, train_steps

    root = tmp_path_factory.mktemp("package")
    model = tiny_model("gad")
    train_steps(model, steps=3)  # LoRA B starts at zero: train so merging matters
    checkpoint = root / "run" / "checkpoint"
    save_checkpoint(model, checkpoint, extra={"data": {"fps": 4.0, "encoder": None}})
    result = export_package(checkpoint, root / "models")
    return checkpoint, result.folder


@pytest.fixture(scope="session")
def streaming_package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, exported package folder) of a tiny streaming-attention model (W = 6):
    a package with step.onnx and no head."""
    from model.checkpoint import save_checkpoint
    from model.export.package import export_package
    from tests.model.helpers import tiny_streaming_model

    root = tmp_path_factory.mktemp("streaming-package")
    checkpoint = root / "run" / "checkpoint"
    save_checkpoint(tiny_streaming_model(6), checkpoint, extra={"data": {"fps": 4.0}})
    result = export_package(checkpoint, root / "models")
    return checkpoint, result.folder
