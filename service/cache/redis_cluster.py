"""The Redis backend on a Redis Cluster: the same keys and Lua scripts, streams spread over
the cluster's masters by hash slot (`GAD_REDIS_URL=redis+cluster://h1:p1,h2:p2,...`).

A script may only touch keys of one slot. A stream's two keys share the hash tag
`{<sha256(stream key)[:32]>}` (redis.py, `stream_keys`), so each script call maps to one
slot, which redis-py routes to the master that owns it; different streams land on different
masters. Nothing else changes: atomicity, the ownership and conflict checks and the TTLs are
per stream, hence per slot.

Failures (all raise CacheUnavailable, naming the redacted URL, in bounded time):
- the master of a stream's slot is down: the client re-reads the slot map and retries
  (`retries` times), each try bounded by `timeout_s`; a refused connection fails at once,
  a silent host after `timeout_s`;
- once the cluster has marked the master failed (cluster-node-timeout) and no replica took
  over, every node answers CLUSTERDOWN for every slot (Redis's default
  cluster-require-full-coverage yes), so all streams report the outage, not a third;
- no seed node answers, or the slots are not all covered: the map cannot be built.
A master restarted with its nodes.conf rejoins; the next call re-reads the map and its
streams carry on (restored from the live handlers' copies if it came back empty).
With replicas, a failover moves the slots and the client follows (MOVED / re-read map).

`ping` (for /readyz) asks every master for CLUSTER INFO: ready only when all answer with
cluster_state ok, so no stream is routed to a `gad serve` whose cluster cannot hold it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from service.cache.redis import RedisFeatureCache
from service.cache.urls import parse_cluster_url

T = TypeVar("T")


class RedisClusterFeatureCache(RedisFeatureCache):
    """Streams in a Redis Cluster, shared by every replica that uses the same URL and prefix."""

    kind = "Redis Cluster"
    backend = "redis-cluster"

    def _connect(self, url: str, *, timeout_s: float, retries: int) -> RedisCluster:
        """A cluster client over the URL's seed nodes; it finds the rest (CLUSTER SLOTS) on
        first use. Options in the URL's query win over these defaults, as for redis://."""
        target = parse_cluster_url(url)
        options: dict[str, Any] = dict(parse_url(target.node_url))
        for name in ("host", "port", "db"):
            options.pop(name, None)
        ssl = options.pop("connection_class", None) is SSLConnection
        defaults: dict[str, Any] = {
            "socket_timeout": timeout_s,
            "socket_connect_timeout": timeout_s,
            "client_name": "gad-stream",
        }
        self._cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
            ssl=ssl,
            # One try plus `retries`; each re-reads the slot map after a connection error.
            retry=Retry(NoBackoff(), retries),
            **(defaults | options),
        )
        self._mapped = False
        return self._cluster

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        if not self._mapped:
            await super()._call("reading the slot map", self._map)
        return await super()._call(what, call)

    async def _map(self) -> None:
        """Read the slot map before the first command. redis-py (seen in 8.1) routes a command
        sent before its client has a map to a random node: under concurrent first calls the
        MOVED replies pile up until it drops every connection, in-flight commands included
        (30 concurrent first attaches: 20 of 30 failed without this)."""
        await self._cluster.initialize()  # once: concurrent callers wait on its lock
        self._mapped = True

    async def ping(self) -> bool:
        try:
            if not self._mapped:
                await self._map()
            replies = await self._cluster.cluster_info(target_nodes=RedisCluster.PRIMARIES)
        except Exception:
            return False
        return bool(replies) and all(_state(info) == "ok" for info in _per_node(replies).values())


def _per_node(replies: Any) -> dict[str, Any]:
    """CLUSTER INFO replies by node (redis-py returns one reply bare, several in a dict)."""
    if isinstance(replies, dict) and "cluster_state" not in replies:
        return replies
    return {"": replies}


def _state(info: Any) -> str:
    return str(info.get("cluster_state", "")) if isinstance(info, dict) else ""
