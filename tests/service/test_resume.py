"""Resume after a disconnect, on another app instance sharing Redis (one server, or a
3-master Redis Cluster); readiness with Redis."""

import time

import numpy as np
import pytest

from tests.model.helpers import FEATURE_DIM
from tests.service.streaming import client, offline_scores, stream_rows

FPS = 4.0


@pytest.fixture(scope="module")
def package(tiny_package):
    return tiny_package[1]


@pytest.fixture(params=["redis", "cluster"])
def shared_store(request: pytest.FixtureRequest) -> dict[str, str]:
    """The settings two replicas share: a Redis, or a Redis Cluster (redis+cluster://)."""
    cluster = request.param == "cluster"
    url = request.getfixturevalue("redis_cluster_url" if cluster else "redis_url")
    prefix = request.getfixturevalue("cluster_prefix" if cluster else "redis_prefix")
    return {"redis_url": url, "redis_prefix": prefix}


def test_reconnect_to_another_replica_continues_with_identical_labels(
    package, shared_store: dict[str, str]
) -> None:
    rows = np.random.default_rng(3).normal(size=(16, FEATURE_DIM)).astype(np.float32)
    shared = shared_store
    with client(package, **shared) as first, first.websocket_connect("/v1/streams/door") as ws:
        assert not ws.receive_json()["resumed"]
        before = stream_rows(ws, rows[:9], FPS)
    # The connection dropped; the client reconnects to a second replica.
    with client(package, **shared) as second, second.websocket_connect("/v1/streams/door") as ws:
        ready = ws.receive_json()
        assert ready["resumed"] and ready["rows"] == 9 and ready["next_seq"] == 9
        after = stream_rows(ws, rows[9:], FPS, start=9)
    labels = [r["index"] for r in before + after]
    expected = offline_scores(package, rows)
    assert [r["row"] for r in before + after] == list(range(16))
    assert labels == expected.argmax(1).tolist()  # as if it had never disconnected
    np.testing.assert_allclose([r["score"] for r in before + after], expected.max(1), atol=1e-5)


def test_readyz_follows_redis_and_streams_report_the_outage(package, private_redis) -> None:
    rows = np.random.default_rng(4).normal(size=(4, FEATURE_DIM)).astype(np.float32)
    settings = {"redis_url": private_redis.url, "cache_timeout_s": 0.3}
    with client(package, **settings) as http:
        assert http.get("/readyz").status_code == 200
        with http.websocket_connect("/v1/streams/outage") as ws:
            ws.receive_json()
            assert stream_rows(ws, rows[:2], FPS)[-1]["row"] == 1
            private_redis.stop()
            outage = stream_rows(ws, rows[2:3], FPS, start=2)[0]
            assert outage["type"] == "error" and outage["code"] == "cache" and outage["retry"]
            ready = http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["cache"] == "unreachable"
            private_redis.restart()
            deadline = time.monotonic() + 10
            while http.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "readyz did not recover"
                time.sleep(0.1)
            # The lost frame is sent again: the stream carries on where it was.
            again = stream_rows(ws, rows[2:4], FPS, start=2)
    assert [r["row"] for r in again] == [2, 3]
