from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.cache_files import cache_lock

# The users' examples (GAD_DATA_DIR, service/examples/) default to a folder in the home
# directory: tests that do not name their own (tmp_path) write to a private one, never there.
if "GAD_DATA_DIR" not in os.environ:
    import tempfile

    os.environ["GAD_DATA_DIR"] = tempfile.mkdtemp(prefix="gad-test-examples-")

# `make test` runs the suite on pytest-xdist workers (-n 3): each worker gets its share of
# the cores for torch's and OpenMP's threads (one each on a 2-core machine), or the
# workers' thread pools fight over the same cores and every training test runs slower.
if workers := int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")):
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, str(max(1, (os.cpu_count() or 1) // workers)))

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
    # Files with slow tests first, each file's tests in their order (a stable sort): the
    # workers of `make test` (xdist, a file at a time) start on the long files and the fast
    # ones fill in at the end, instead of one worker finishing a long file alone.
    slow = {item.path for item in items if item.get_closest_marker("integration") is not None}
    items.sort(key=lambda item: item.path not in slow)


@pytest.fixture(scope="session")
def gad_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where SmolLM2 is converted: $GAD_CACHE_DIR (make test sets it) or a session temp dir."""
    env = os.environ.get("GAD_CACHE_DIR")
    return Path(env) if env else tmp_path_factory.mktemp("gad-cache")


@pytest.fixture
def class_names() -> tuple[str, ...]:
    return CLASS_NAMES


def built_once(
    factory: pytest.TempPathFactory, name: str, build: Callable[[Path], tuple[Path, ...]]
) -> tuple[Path, ...]:
    """What `build(folder)` returns, built once for the whole run: under `make test`'s xdist
    workers, by the first worker to ask (a file lock; the others wait, then find it), in the
    run's shared temp folder. `build` returns paths inside `folder`."""
    base = factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder, done = root / name, root / f"{name}.json"
    with cache_lock(folder):
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            built = build(folder)
            done.write_text(json.dumps([str(path.relative_to(folder)) for path in built]))
    return tuple(folder / part for part in json.loads(done.read_text()))


def _tiny_package(root: Path) -> tuple[Path, Path]:
    from model.checkpoint import save_checkpoint
    from model.export.package import export_package
    from tests.model.helpers import tiny_model, train_steps

    model = tiny_model("gad")
    train_steps(model, steps=3)  # LoRA B starts at zero: train so merging matters
    checkpoint = root / "run" / "checkpoint"
    save_checkpoint(model, checkpoint, extra={"data": {"fps": 4.0, "encoder": None}})
    return checkpoint, export_package(checkpoint, root / "models").folder


def _streaming_package(root: Path) -> tuple[Path, Path]:
    from model.checkpoint import save_checkpoint
    from model.export.package import export_package
    from tests.model.helpers import tiny_streaming_model

    checkpoint = root / "run" / "checkpoint"
    save_checkpoint(tiny_streaming_model(6), checkpoint, extra={"data": {"fps": 4.0}})
    return checkpoint, export_package(checkpoint, root / "models").folder


@pytest.fixture(scope="session")
def tiny_package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, exported package folder) of a briefly trained tiny GAD model."""
    checkpoint, folder = built_once(tmp_path_factory, "package", _tiny_package)
    return checkpoint, folder


@pytest.fixture(scope="session")
def streaming_package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, exported package folder) of a tiny streaming-attention model (W = 6):
    a package with step.onnx and no head."""
    checkpoint, folder = built_once(tmp_path_factory, "streaming-package", _streaming_package)
    return checkpoint, folder


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


# GAD_TEST_CPU_REPORT=FILE: each test's CPU seconds (this process and the child processes it
# waited for: servers it started and stopped) appended to FILE.WORKER.tsv, to find where the
# suite's CPU goes (docs/testing.md: `sort -t$'\t' -k2 -rn FILE.*.tsv | head`).
CPU_REPORT = os.environ.get("GAD_TEST_CPU_REPORT")


def _cpu_seconds() -> float:
    import resource

    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    if not CPU_REPORT:
        yield
        return
    started = _cpu_seconds()
    yield
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(f"{CPU_REPORT}.{worker}.tsv", "a") as report:
        report.write(f"{item.nodeid}\t{_cpu_seconds() - started:.2f}\n")
