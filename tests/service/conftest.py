"""A real Redis for the feature-cache tests (never a fake), and a private one to kill."""

from __future__ import annotations

import itertools
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.redis_server import SETUP_HINT, RedisServer, delete_prefix, redis_for_tests

_test_numbers = itertools.count()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """$GAD_TEST_REDIS_URL, else 127.0.0.1:6379, else a redis-server started for the run."""
    with tempfile.TemporaryDirectory(prefix="gad-redis-") as folder, ExitStack() as stack:
        try:
            url = stack.enter_context(redis_for_tests(Path(folder)))
        except RuntimeError as error:
            problem = str(error)
        else:
            yield url
            return
    pytest.fail(f"no Redis for the cache tests ({problem}); {SETUP_HINT}", pytrace=False)


@pytest.fixture(scope="session")
def redis_run_prefix(redis_url: str) -> Iterator[str]:
    """This run's key namespace in the (maybe shared) Redis; its keys are deleted at the end."""
    prefix = f"gadtest-{secrets.token_hex(4)}"
    yield prefix
    delete_prefix(redis_url, prefix)


@pytest.fixture
def redis_prefix(redis_run_prefix: str) -> str:
    """A key namespace of this test's own."""
    return f"{redis_run_prefix}:{next(_test_numbers)}"


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own on a free port: stop and restart it at will."""
    with tempfile.TemporaryDirectory(prefix="gad-redis-") as folder:
        try:
            server = RedisServer.start(Path(folder))
        except RuntimeError as error:
            problem = str(error)
        else:
            with server:
                yield server
            return
    pytest.fail(f"cannot start a private Redis ({problem}); {SETUP_HINT}", pytrace=False)


@pytest.fixture(scope="session")
def demo_model() -> Path:
    """The default demo model (make setup builds it; built here if it is missing)."""
    from gad.demo import build_demo, demo_root, is_built

    root = demo_root()
    if not is_built(root):
        build_demo(root)
    return root


@pytest.fixture(scope="session")
def live_server(demo_model: Path) -> Iterator[str]:
    """`gad serve` on the demo model, a real uvicorn on a free port: its base URL."""
    from bench.launch import served
    from gad.demo import package_dir

    env = {"GAD_THREADS": "1", "GAD_PROVIDERS": "cpu"}
    with served(package_dir(demo_model), env=env) as server:
        yield server.url
