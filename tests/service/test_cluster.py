"""The feature cache on a real Redis Cluster (three masters on loopback): cluster URLs, one
slot per stream, and what a user sees when a master dies and comes back.

The cache contract itself runs on the cluster in test_cache.py (the `cluster` backend), and
the two-replica resume in test_resume.py.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from redis.asyncio.connection import SSLConnection
from starlette.websockets import WebSocketDisconnect

from runtime.errors import ConfigError
from service.cache import CacheConflict, CacheUnavailable, create_cache, redact_url
from service.cache.redis import stream_keys
from service.cache.redis_cluster import RedisClusterFeatureCache
from service.cache.urls import cache_backend, parse_cluster_url
from service.settings import Settings
from tests.model.helpers import FEATURE_DIM
from tests.redis_cluster import LocalCluster, cluster_client, free_cluster_port, node_client
from tests.service.streaming import client, offline_scores, stream_rows

DIM = 8
FPS = 4.0
KEYS = ["a", "cam/1", "{a}", "x}{y", "кухня/камера 2 🎥", "z" * 1000] + [
    f"cam-{i}" for i in range(40)
]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


@pytest.fixture(scope="module")
def package(tiny_package):
    return tiny_package[1]


# --- URLs ----------------------------------------------------------------------------------


def test_cluster_urls_name_their_seed_nodes_and_bad_ones_are_refused() -> None:
    url = "rediss+cluster://gad:s%40cret@10.0.0.1:7000, redis-1 ,[::1]:7002?ssl_cert_reqs=none"
    parsed = parse_cluster_url(url)
    assert parsed.nodes == (("10.0.0.1", 7000), ("redis-1", 6379), ("::1", 7002))
    assert parsed.node_url == "rediss://gad:s%40cret@10.0.0.1:7000/0?ssl_cert_reqs=none"
    assert cache_backend(url) == "cluster" and cache_backend("redis://h:1/2") == "redis"
    assert cache_backend(None) == cache_backend("") == "memory"
    assert redact_url("redis+cluster://u:s3cret@a:1,b:2/0") == "redis+cluster://u:***@a:1,b:2/0"
    bad = {
        "redis+cluster://u:s3cret@a:1/2": "only database 0",
        "redis+cluster://u:s3cret@a:1,b:port": "'b:port' is not one",
        "redis+cluster://u:s3cret@a:1,,b:2": "'' is not one",
        "redis+cluster://u:s3cret@": "'' is not one",
        "redis+cluster://u:s3cret@a:70000": "'a:70000' is not one",
        "cluster://u:s3cret@a:1": "redis\\+cluster://",
    }
    for text, why in bad.items():
        with pytest.raises(ConfigError, match=why) as caught:
            cache_backend(text)
        assert "s3cret" not in str(caught.value) and "***" in str(caught.value)
        with pytest.raises(ValueError, match=why) as refused:  # at start, from the settings
            Settings(redis_url=text)
        assert "s3cret" not in str(refused.value)
    assert Settings(redis_url=url).redis_url == url
    cache = create_cache(url + "&health_check_interval=5", prefix="p")  # connects on first use
    assert isinstance(cache, RedisClusterFeatureCache) and cache.stats().backend == "redis-cluster"
    options = cache._cluster.connection_kwargs  # TLS, the password unquoted, the URL's options
    assert options["connection_class"] is SSLConnection and options["password"] == "s@cret"
    assert options["health_check_interval"] == 5 and "s@cret" not in repr(cache)
    run(cache.close())
    with pytest.raises(ConfigError, match="bogus"):
        create_cache("redis+cluster://127.0.0.1:7000?bogus=1")


# --- slots ---------------------------------------------------------------------------------


def test_each_streams_keys_share_one_slot_and_streams_spread_over_the_masters(
    redis_cluster_url: str, cluster_prefix: str
) -> None:
    """The Lua scripts touch both keys of a stream: Redis Cluster runs them only if the keys
    hash to one slot (CLUSTER KEYSLOT, computed by the server), served by one master."""

    async def main() -> None:
        async with create_cache(redis_cluster_url, prefix=cluster_prefix) as cache:
            for value, key in enumerate(KEYS):
                state = await cache.attach(key, dim=DIM, span=4)
                await cache.append(state, np.full(DIM, value, np.float32))

    run(main())
    with cluster_client(redis_cluster_url) as cluster:
        holders = set()
        for key in KEYS:
            rows, meta = stream_keys(cluster_prefix, key)
            slot = cluster.cluster_keyslot(rows)
            assert cluster.cluster_keyslot(meta) == slot, key
            node = cluster.get_node_from_key(rows)
            with node_client(node.port) as master:  # both keys live on that master itself
                assert master.exists(rows, meta) == 2, key
                assert int(master.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)) >= 2
            holders.add(node.name)
        masters = {node.name for node in cluster.get_primaries()}
    assert holders == masters and len(masters) == 3  # 46 streams reached every master


def test_a_seed_that_is_not_a_cluster_node_is_a_clear_error(redis_url: str) -> None:
    single = redis_url.split("://", 1)[1].split("/", 1)[0]

    async def main() -> None:
        async with create_cache(f"redis+cluster://{single}", prefix="gadtest-x") as cache:
            assert not await cache.ping()
            with pytest.raises(CacheUnavailable, match=r"(?i)cluster mode is not enabled"):
                await cache.attach("cam", dim=DIM, span=4)

    run(main())


def test_an_unreachable_cluster_fails_fast_with_a_redacted_url() -> None:
    ports = [free_cluster_port(), free_cluster_port()]  # nothing listens there
    url = "redis+cluster://gad:s3cret@" + ",".join(f"127.0.0.1:{p}" for p in ports)

    async def main() -> None:
        async with create_cache(url, timeout_s=0.5) as cache:
            assert not await cache.ping()
            with pytest.raises(CacheUnavailable, match="Redis Cluster at") as caught:
                await cache.attach("cam", dim=DIM, span=4)
            assert "s3cret" not in str(caught.value) and "gad:***@127.0.0.1" in str(caught.value)

    run(main())


# --- a master dies -------------------------------------------------------------------------


def wait_for(predicate, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"{what} within {timeout_s} s"
        time.sleep(0.05)


def on_other_master(cluster: LocalCluster, prefix: str, dead: str) -> str:
    """A stream id whose slot another master serves than the one holding `dead`'s."""
    victim = cluster.master_of(stream_keys(prefix, dead)[0])
    return next(
        key
        for key in (f"other-{i}" for i in range(100))
        if cluster.master_of(stream_keys(prefix, key)[0]) is not victim
    )


def test_a_dead_master_fails_its_streams_then_the_cluster_and_both_recover(
    private_cluster: LocalCluster,
) -> None:
    """Kill the master of one stream's slot: that stream fails at once (connection refused);
    a stream on a surviving master carries on until the cluster marks the master failed,
    then fails too (CLUSTERDOWN: Redis stops every slot while one is uncovered). Restart the
    master on its port with its nodes.conf: both streams continue, the one whose rows died
    with the master by restoring them from its live copy."""
    cluster, prefix = private_cluster, "kill"
    other = on_other_master(cluster, prefix, "cam")
    victim = cluster.master_of(stream_keys(prefix, "cam")[0])

    async def main() -> None:
        async with create_cache(cluster.url, prefix=prefix, timeout_s=0.5) as cache:
            cam = await cache.append(await cache.attach("cam", dim=DIM, span=4), np.ones(DIM))
            far = await cache.append(await cache.attach(other, dim=DIM, span=4), np.ones(DIM))
            assert await cache.ping()
            victim.kill()
            with pytest.raises(CacheUnavailable, match=f"Redis Cluster at .*{victim.port}"):
                await cache.append(cam, np.ones(DIM))
            assert not await cache.ping()
            if cluster_state_of(cluster) == "ok":  # not yet marked failed: others still serve
                far = await cache.append(far, np.full(DIM, 2.0))
            await asyncio.to_thread(cluster.wait_state, "fail")
            with pytest.raises(CacheUnavailable, match=r"(?i)cluster is down"):
                await cache.append(far, np.full(DIM, 3.0))
            victim.restart()  # same port, same nodes.conf: it claims its slots again
            await asyncio.to_thread(cluster.wait_state, "ok")
            assert await cache.ping()
            with pytest.raises(CacheConflict) as lost:  # no persistence: its rows are gone
                await cache.append(cam, np.ones(DIM))
            assert lost.value.gone
            cam = await cache.append(await cache.restore(cam), np.full(DIM, 4.0))
            far = await cache.append(far, np.full(DIM, 5.0))
            back = await cache.attach("cam", dim=DIM, span=4)
            assert back.total_rows == cam.total_rows == 2
            assert (await cache.attach(other, dim=DIM, span=4)).total_rows == far.total_rows

    run(main())


def cluster_state_of(cluster: LocalCluster) -> str:
    with node_client(next(n for n in cluster.nodes if n.process).port) as live:
        return str(live.cluster("INFO")["cluster_state"])


def test_a_user_streaming_through_a_master_failure_sees_errors_then_continues(
    package, private_cluster: LocalCluster
) -> None:
    """What a client sees: frames refused with the `cache` error (retry: true) naming the
    cluster, /readyz 503, a new stream closed with the reason; after the master is back the
    client resends the refused frames and gets exactly the labels of an unbroken stream."""
    cluster, prefix = private_cluster, "ws"
    rows = np.random.default_rng(5).normal(size=(8, FEATURE_DIM)).astype(np.float32)
    victim = cluster.master_of(stream_keys(prefix, "door")[0])
    newcomer = next(  # a new stream whose slot the dead master held
        f"late-{i}"
        for i in range(200)
        if cluster.master_of(stream_keys(prefix, f"late-{i}")[0]) is victim
    )
    settings = {"redis_url": cluster.url, "redis_prefix": prefix, "cache_timeout_s": 0.5}
    with client(package, **settings) as http, http.websocket_connect("/v1/streams/door") as ws:
        assert http.get("/readyz").status_code == 200
        ws.receive_json()
        before = stream_rows(ws, rows[:4], FPS)
        victim.kill()
        refused = stream_rows(ws, rows[4:6], FPS, start=4)
        for reply in refused:
            assert reply["type"] == "error" and reply["code"] == "cache" and reply["retry"]
            assert "Redis Cluster at redis+cluster://127.0.0.1:" in reply["error"]
        ready = http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["cache"] == "unreachable"
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            http.websocket_connect(f"/v1/streams/{newcomer}") as late,
        ):
            late.receive_json()
        assert closed.value.code == 1011 and "feature cache unavailable" in closed.value.reason
        victim.restart()
        cluster.wait_state("ok")
        wait_for(lambda: http.get("/readyz").status_code == 200, "/readyz 200 again")
        after = stream_rows(ws, rows[4:], FPS, start=4)  # the refused frames, sent again
    labels = before + after
    assert [r["row"] for r in labels] == list(range(8))
    expected = offline_scores(package, rows)
    assert [r["index"] for r in labels] == expected.argmax(1).tolist()
    np.testing.assert_allclose([r["score"] for r in labels], expected.max(1), atol=1e-5)


def test_with_replicas_a_dead_master_fails_over_and_the_stream_loses_nothing(
    package, replicated_cluster: LocalCluster
) -> None:
    """Three masters with a replica each. Kill the master of a live stream's slot once its
    replica has all its writes: frames are refused (`cache`, retry) until the replica takes
    over (cluster-node-timeout, then an election), then the client's resent frame is
    accepted and every label equals an unbroken stream's, with the old master still dead."""
    cluster, prefix = replicated_cluster, "failover"
    rows = np.random.default_rng(6).normal(size=(8, FEATURE_DIM)).astype(np.float32)
    key = stream_keys(prefix, "door")[0]
    settings = {"redis_url": cluster.url, "redis_prefix": prefix, "cache_timeout_s": 0.5}
    with client(package, **settings) as http, http.websocket_connect("/v1/streams/door") as ws:
        ws.receive_json()
        labels = stream_rows(ws, rows[:4], FPS)
        victim = cluster.master_of(key)
        wait_for(lambda: cluster.replicated(victim), "the replica caught up")
        victim.kill()
        refused = 0
        deadline = time.monotonic() + 30
        while True:  # what a client does with `retry: true`: send the frame again, later
            (reply,) = stream_rows(ws, rows[4:5], FPS, start=4)
            if reply["type"] == "label":
                break
            assert reply["code"] == "cache" and reply["retry"], reply
            assert time.monotonic() < deadline, "no failover within 30 s"
            refused += 1
            time.sleep(0.2)
        labels += [reply, *stream_rows(ws, rows[5:], FPS, start=5)]
        assert cluster.master_of(key) is not victim  # its replica serves the slot now
        assert http.get("/readyz").status_code == 200
    assert refused >= 1  # the outage was seen, then it was over
    assert [r["row"] for r in labels] == list(range(8))
    expected = offline_scores(package, rows)
    assert [r["index"] for r in labels] == expected.argmax(1).tolist()
    np.testing.assert_allclose([r["score"] for r in labels], expected.max(1), atol=1e-5)
