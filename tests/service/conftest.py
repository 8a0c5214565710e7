"""A real Redis and a real Redis Cluster for the feature-cache tests (never fakes), and
private ones to kill."""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_cluster import ENV_URL as CLUSTER_ENV_URL
from tests.redis_cluster import SETUP_HINT as CLUSTER_SETUP_HINT
from tests.redis_cluster import LocalCluster, cluster_reachable, delete_cluster_prefix
from tests.redis_server import SETUP_HINT, RedisServer, delete_prefix, redis_for_tests
from tests.servers import started_or_fail

_test_numbers = itertools.count()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """$GAD_TEST_REDIS_URL, else 127.0.0.1:6379, else a redis-server started for the run."""
    yield from started_or_fail(
        redis_for_tests,
        prefix="gad-redis-",
        failure="no Redis for the cache tests",
        hint=SETUP_HINT,
    )


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
    yield from started_or_fail(
        RedisServer.start,
        prefix="gad-redis-",
        failure="cannot start a private Redis",
        hint=SETUP_HINT,
    )


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """$GAD_TEST_REDIS_CLUSTER_URL (redis+cluster://...), else a 3-master cluster started on
    free loopback ports for the run (tests/redis_cluster.py)."""
    env = os.environ.get(CLUSTER_ENV_URL)
    if env:
        if not cluster_reachable(env):
            pytest.fail(f"{CLUSTER_ENV_URL} is set but its cluster is not ok", pytrace=False)
        yield env
        return
    for cluster in started_or_fail(
        LocalCluster.start,
        prefix="gad-cluster-",
        failure="cannot start a Redis Cluster",
        hint=CLUSTER_SETUP_HINT,
    ):
        yield cluster.url


@pytest.fixture(scope="session")
def cluster_run_prefix(redis_cluster_url: str) -> Iterator[str]:
    """This run's key namespace in the cluster; its keys are deleted from every master."""
    prefix = f"gadtest-{secrets.token_hex(4)}"
    yield prefix
    delete_cluster_prefix(redis_cluster_url, prefix)


@pytest.fixture
def cluster_prefix(cluster_run_prefix: str) -> str:
    """A key namespace of this test's own, in the cluster."""
    return f"{cluster_run_prefix}:{next(_test_numbers)}"


@pytest.fixture
def private_cluster() -> Iterator[LocalCluster]:
    """A 3-master Redis Cluster of this test's own: kill and restart its nodes at will."""
    yield from _private_cluster(replicas=0)


@pytest.fixture
def replicated_cluster() -> Iterator[LocalCluster]:
    """Three masters with a replica each (six nodes): a killed master fails over."""
    yield from _private_cluster(replicas=1)


def _private_cluster(*, replicas: int) -> Iterator[LocalCluster]:
    yield from started_or_fail(
        lambda folder: LocalCluster.start(folder, replicas=replicas),
        prefix="gad-cluster-",
        failure="cannot start a private Redis Cluster",
        hint=CLUSTER_SETUP_HINT,
    )


@pytest.fixture(scope="session")
def demo_model(render_demo: Path) -> Path:
    """The render demo's root: the model and videos the service tests stream."""
    return render_demo


@pytest.fixture(scope="session")
def live_server(demo_model: Path) -> Iterator[str]:
    """`gad serve` on the demo model, a real uvicorn on a free port: its base URL."""
    from bench.launch import served
    from gad.demo import package_dir

    env = {"GAD_THREADS": "1", "GAD_PROVIDERS": "cpu"}
    with served(package_dir(demo_model), env=env) as server:
        yield server.url
