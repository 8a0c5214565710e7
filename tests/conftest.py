from __future__ import annotations

import os
from pathlib import Path

import pytest

# The users' examples (GAD_DATA_DIR, service/examples/) default to a folder in the home
# directory: tests that do not name their own (tmp_path) write to a private one, never there.
if "GAD_DATA_DIR" not in os.environ:
    import tempfile

    os.environ["GAD_DATA_DIR"] = tempfile.mkdtemp(prefix="gad-test-examples-")

CLASS_NAMES = ("background", "open drawer", "close drawer", "open door", "close door", "open")

# `integration` marks what is slow: real servers started, killed and restarted, Redis fault
# injection and Redis Cluster, docker/k8s validation, benchmarks, models trained or exported
# for seconds, real pretrained backbones and encoders. `make test-fast` (pytest -m "not
# integration") leaves them out and runs the fast core in under a minute; `make test` (CI)
# runs everything. Where the mark comes from, in order of preference:
#   1. here, by fixture: a test that uses one of INTEGRATION_FIXTURES (directly or through
#      another fixture) is marked, so a new test on a built package or a private server
#      needs nothing more;
#   2. here: `slow` (a real pretrained backbone) implies integration, and every test under
#      INTEGRATION_DIRS is one;
#   3. in the test file: `pytestmark = pytest.mark.integration` where a module trains or
#      exports models throughout, `@pytest.mark.integration` on the few such tests of an
#      otherwise fast module (e.g. tests/training/test_train.py), and `pytest.param(...,
#      marks=pytest.mark.integration)` for a fixture parameter (tests/service/test_cache.py's
#      Redis Cluster backend, reached through getfixturevalue, which rule 1 cannot see).
# A test that needs seconds of CPU on an idle 2-core machine gets the mark.
INTEGRATION_FIXTURES = frozenset(
    {
        "tiny_package",  # a tiny GAD model trained and exported for the session
        "streaming_package",
        "demo_model",  # the render demo and the services over it (tests/service/)
        "pose_demo",  # the pose demo (what `make run` serves)
        "live_server",  # a real `gad serve`
        "render_demo",  # the render demo: its videos, RTSP and MJPEG cameras
        "private_redis",  # a redis-server of the test's own, to stop and restart
        "redis_cluster_url",  # a 3-master Redis Cluster for the run
        "private_cluster",
        "replicated_cluster",
    }
)
INTEGRATION_DIRS = frozenset({"bench", "deploy", "stack"})  # benchmarks; docker, k8s


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        if item.get_closest_marker("integration") is not None:
            continue
        try:
            top = item.path.relative_to(root).parts[0]
        except ValueError:
            top = ""
        if (
            INTEGRATION_FIXTURES.intersection(getattr(item, "fixturenames", ()))
            or item.get_closest_marker("slow") is not None
            or top in INTEGRATION_DIRS
        ):
            item.add_marker(pytest.mark.integration)


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


@pytest.fixture(scope="session")
def render_demo() -> Path:
    """The render demo's root folder (make setup builds it; built here, once across test
    workers, if it is missing): its package, videos and their truth."""
    from gad.demo import ensure_demo

    return ensure_demo("render")


@pytest.fixture(scope="session")
def pose_demo() -> Path:
    """What `make run` serves: the pose demo's package folder (built here if missing)."""
    from gad.demo import SERVED_KIND, ensure_demo, package_dir

    return package_dir(ensure_demo(SERVED_KIND), kind=SERVED_KIND)
