"""Per-stream state: in process (memory) or shared across replicas (Redis).

state.py   the shared types: StreamState, FeatureCache, errors, row and meta checks
memory.py  the in-process backend (one replica, nothing to install)
redis.py   the Redis backend (replicas share streams)
"""

from __future__ import annotations

from runtime.errors import ConfigError
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
    is_memory_url,
    redact_url,
    stream_bytes,
)

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
    """None / "memory" → in-process; redis:// rediss:// unix:// → Redis (shared by replicas).

    `max_streams` bounds the in-process cache (Redis is bounded by its own maxmemory).
    `timeout_s` bounds each Redis connect and reply; `retries` reconnects and retries a
    failed call that many times (how a restarted Redis is picked up), so an unreachable
    Redis fails within about (1 + retries) x timeout_s. Nothing connects until first use.
    """
    if url is None or is_memory_url(url):
        return MemoryFeatureCache(dtype_name=dtype, ttl_s=ttl_s, max_streams=max_streams)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(
            "cache URL must be empty or 'memory' (in-process), or redis://, rediss:// or "
            f"unix:// (Redis); got {redact_url(url)!r}"
        )
    from service.cache.redis import RedisFeatureCache  # redis-py is only needed here

    return RedisFeatureCache(
        url, dtype_name=dtype, ttl_s=ttl_s, prefix=prefix, timeout_s=timeout_s, retries=retries
    )
