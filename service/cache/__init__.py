"""Per-stream state: in process (memory) or shared across replicas (Redis).

state.py   the shared types: StreamState, FeatureCache, errors, row and meta checks
memory.py  the in-process backend (one replica, nothing to install)
redis.py   the Redis backend (replicas share streams)
redis_cluster.py  the same on a Redis Cluster (streams spread over its masters)
urls.py    which backend a URL names; a cluster URL's seed nodes; redacted URLs for logs
"""

from __future__ import annotations

from service.cache.memory import MemoryFeatureCache
from service.cache.state import (
    DEFAULT_MAX_STREAMS,
    DEFAULT_TTL_S,
    CacheConflict,
    CacheError,
    CacheFull,
    CacheMismatch,
    CacheStats,
    CacheUnavailable,
    FeatureCache,
    Meta,
    StreamState,
    stream_bytes,
)
from service.cache.urls import cache_backend, redact_url

__all__ = [
    "CacheConflict",
    "CacheError",
    "CacheFull",
    "CacheMismatch",
    "CacheStats",
    "CacheUnavailable",
    "FeatureCache",
    "MemoryFeatureCache",
    "Meta",
    "StreamState",
    "create_cache",
    "redact_url",
    "stream_bytes",
]


def create_cache(
    url: str | None = None,
    *,
    dtype: str = "float32",
    ttl_s: float = DEFAULT_TTL_S,
    prefix: str = "gad",
    max_streams: int = DEFAULT_MAX_STREAMS,
    timeout_s: float = 1.0,
    retries: int = 1,
) -> FeatureCache:
    """None / "memory" → in-process; redis:// rediss:// unix:// → Redis (shared by replicas);
    redis+cluster:// rediss+cluster:// → Redis Cluster (service/cache/urls.py has the forms).

    `max_streams` bounds the in-process cache (Redis is bounded by its own maxmemory).
    `timeout_s` bounds each Redis connect and reply; `retries` reconnects and retries a
    failed call that many times (how a restarted Redis is picked up), so an unreachable
    Redis fails within about (1 + retries) x timeout_s. Nothing connects until first use.
    """
    backend = cache_backend(url)  # ConfigError for anything else
    if backend == "memory":
        return MemoryFeatureCache(dtype_name=dtype, ttl_s=ttl_s, max_streams=max_streams)
    assert url is not None
    # redis-py is only needed from here on
    from service.cache.redis import RedisFeatureCache
    from service.cache.redis_cluster import RedisClusterFeatureCache

    kind = RedisClusterFeatureCache if backend == "cluster" else RedisFeatureCache
    return kind(
        url, dtype_name=dtype, ttl_s=ttl_s, prefix=prefix, timeout_s=timeout_s, retries=retries
    )
