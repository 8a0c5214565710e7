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
