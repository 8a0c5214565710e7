"""The Redis backend of the feature cache: replicas share streams (redis.asyncio).

Each stream is two keys, both under one Redis Cluster hash tag so a script may touch both:

    {prefix}:stream:{<sha256(stream key)[:32]>}:rows   list of raw little-endian rows, oldest first
    {prefix}:stream:{<sha256(stream key)[:32]>}:meta   hash: key dim dtype total epoch nonce meta

The stream key is hashed, so any id (long, with ':' '/' or unicode) makes a safe, fixed
length key name; the original is kept in the hash's `key` field for operators. Both keys
carry the idle TTL, refreshed by every attach and append.

`attach` and `append` are one Lua script each: one round trip, atomic. `append` checks the
stream's total and epoch, pushes the row, trims the list to the span, sets the meta and
the TTL; MULTI could not refuse a stale writer without a WATCH round trip first. Each append
carries a random nonce, so a call that redis-py retries after its reply was lost (the
write landed) is recognised as done rather than reported as a conflict.

Unreachable or slow Redis raises CacheUnavailable within about (1 + retries) x timeout_s;
the pool reconnects on the next call, so a restarted Redis is picked up without a restart.
redis_cluster.py runs the same scripts on a Redis Cluster: only the client differs.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

import numpy as np
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ClusterDownError, RedisClusterException, ResponseError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT

from runtime.errors import ConfigError
from service.cache.state import (
    DEFAULT_TTL_S,
    CacheConflict,
    CacheError,
    CacheFull,
    CacheMismatch,
    CacheStats,
    CacheUnavailable,
    FeatureCache,
    StreamState,
    check_key,
    encode_meta,
    frozen_meta,
    storage_dtype,
)
from service.cache.urls import redact_url

T = TypeVar("T")
Client = Redis | RedisCluster

# Failures that mean "the store cannot serve now", not "it refused this call": a lost
# connection or timeout, and on a cluster a slot whose master is down (CLUSTERDOWN), a slot
# being moved (TRYAGAIN) or a cluster that cannot be mapped (no seed answers, or slots are
# not covered).
UNAVAILABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    ClusterDownError,
    TryAgainError,
    RedisClusterException,
)

# KEYS: rows, meta. ARGV: stream key, dim, dtype, span, ttl ms, epoch for a new stream,
# the attaching connection's owner id (the newest attach owns the stream).
# → {1 if found else 0, HGETALL meta, the latest `span` rows}
ATTACH_LUA = """
local ttl = tonumber(ARGV[5])
local stored = redis.call('HGET', KEYS[2], 'total')
-- Eviction may take a stream's two keys apart: rows short of what `total` promises would
-- give a truncated window, so such a stream starts over instead.
if stored and redis.call('LLEN', KEYS[1]) < math.min(tonumber(stored), tonumber(ARGV[4])) then
  redis.call('DEL', KEYS[2])
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'key', ARGV[1], 'dim', ARGV[2], 'dtype', ARGV[3],
             'total', 0, 'epoch', ARGV[6], 'nonce', '', 'meta', '{}', 'owner', ARGV[7])
  redis.call('PEXPIRE', KEYS[2], ttl)
  return {0, redis.call('HGETALL', KEYS[2]), {}}
end
redis.call('HSET', KEYS[2], 'owner', ARGV[7])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return {1, redis.call('HGETALL', KEYS[2]), redis.call('LRANGE', KEYS[1], -tonumber(ARGV[4]), -1)}
"""

# KEYS: rows, meta. ARGV: expected total, epoch, nonce, span, ttl ms, row bytes, meta JSON,
# owner. → {status, total}: 1 appended, -1 gone (expired or dropped), -2 recreated,
# -3 moved on (appended elsewhere), -4 taken over (a newer connection attached)
APPEND_LUA = """
local h = redis.call('HMGET', KEYS[2], 'total', 'epoch', 'nonce', 'owner')
if not h[1] then return {-1, 0} end
local total = tonumber(h[1])
local expected = tonumber(ARGV[1])
if h[2] ~= ARGV[2] then return {-2, total} end
if h[4] ~= ARGV[8] then return {-4, total} end
if total ~= expected then
  if total == expected + 1 and h[3] == ARGV[3] then return {1, total} end
  return {-3, total}
end
redis.call('RPUSH', KEYS[1], ARGV[6])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[4]), -1)
redis.call('HSET', KEYS[2], 'total', total + 1, 'nonce', ARGV[3], 'meta', ARGV[7])
local ttl = tonumber(ARGV[5])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return {1, total + 1}
"""

# KEYS: rows, meta. ARGV: stream key, dim, dtype, total, epoch, meta JSON, ttl ms, owner,
# rows...
# → 1 restored, 0 the stream exists again (another connection created it)
RESTORE_LUA = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('DEL', KEYS[1])
if #ARGV > 8 then redis.call('RPUSH', KEYS[1], unpack(ARGV, 9)) end
redis.call('HSET', KEYS[2], 'key', ARGV[1], 'dim', ARGV[2], 'dtype', ARGV[3],
           'total', ARGV[4], 'epoch', ARGV[5], 'nonce', '', 'meta', ARGV[6], 'owner', ARGV[8])
local ttl = tonumber(ARGV[7])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
"""


# KEYS: rows, meta. → {HGETALL meta, every row} ({} when the stream is absent); changes nothing
PEEK_LUA = """
if redis.call('EXISTS', KEYS[2]) == 0 then return {{}, {}} end
return {redis.call('HGETALL', KEYS[2]), redis.call('LRANGE', KEYS[1], 0, -1)}
"""


def stream_keys(prefix: str, stream_key: str) -> tuple[str, str]:
    """(rows key, meta key) of a stream: its id hashed, inside one cluster hash tag."""
    digest = hashlib.sha256(stream_key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    base = f"{prefix}:stream:{{{digest}}}"
    return f"{base}:rows", f"{base}:meta"


class RedisFeatureCache(FeatureCache):
    """Streams in Redis, shared by every replica that uses the same URL and prefix."""

    kind = "Redis"  # how messages name the store
    backend = "redis"  # CacheStats.backend

    def __init__(
        self,
        url: str,
        *,
        dtype_name: str = "float32",
        ttl_s: float = DEFAULT_TTL_S,
        prefix: str = "gad",
        timeout_s: float = 1.0,
        retries: int = 1,
    ) -> None:
        self.dtype_name = dtype_name
        self.dtype = storage_dtype(dtype_name)
        if not ttl_s > 0 or not timeout_s > 0 or retries < 0:
            raise ConfigError(
                f"Redis cache needs ttl_s > 0, timeout_s > 0, retries >= 0; "
                f"got {ttl_s}, {timeout_s}, {retries}"
            )
        if not prefix or any(c in prefix for c in "{} \t\r\n"):
            raise ConfigError(
                f"cache prefix must be non-empty without braces or spaces: {prefix!r}"
            )
        self.ttl_s = ttl_s
        self.prefix = prefix
        self.url = redact_url(url)
        self._ttl_ms = max(1, round(ttl_s * 1000))
        try:
            self._client = self._connect(url, timeout_s=timeout_s, retries=retries)
        except (ValueError, TypeError, RedisClusterException) as error:
            raise ConfigError(f"bad {self.kind} URL {self.url}: {error}") from None
        self._attach = self._client.register_script(ATTACH_LUA)
        self._append = self._client.register_script(APPEND_LUA)
        self._restore = self._client.register_script(RESTORE_LUA)
        self._peek = self._client.register_script(PEEK_LUA)
        self._stats = CacheStats(backend=self.backend, dtype=dtype_name)

    def _connect(self, url: str, *, timeout_s: float, retries: int) -> Client:
        """The client (connecting lazily): a pool of connections to one Redis."""
        return Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), retries),
            client_name="gad-stream",
        )

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}({self.url!r}, dtype={self.dtype_name}, prefix={self.prefix!r})"

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis call, mapping its failures to cache errors that name the URL."""
        try:
            return await call()
        except UNAVAILABLE as error:
            self._stats.unavailable += 1
            raise CacheUnavailable(
                f"{self.kind} at {self.url} is unreachable ({what}): "
                f"{error or type(error).__name__}"
            ) from error
        except ResponseError as error:
            if str(error).startswith("OOM"):
                raise CacheFull(
                    f"{self.kind} at {self.url} is out of memory ({what}): {error}"
                ) from None
            raise CacheError(f"{self.kind} at {self.url} refused {what}: {error}") from None

    async def attach(self, stream_key: str, *, dim: int, span: int) -> StreamState:
        check_key(stream_key, dim=dim, span=span)
        keys = stream_keys(self.prefix, stream_key)
        args: list[EncodableT] = [
            stream_key.encode("utf-8", "surrogatepass"),
            dim,
            self.dtype_name,
            span,
            self._ttl_ms,
            secrets.token_hex(8),
            secrets.token_hex(8),
        ]
        found, flat, raw = await self._call(
            "attach", lambda: self._attach(keys=list(keys), args=args)
        )
        state = self._state(stream_key, keys[1], flat, raw, dim=dim, span=span)
        self._stats.attaches += 1
        self._stats.resumes += bool(found)
        return replace(state, resumed=bool(found))

    async def peek(self, stream_key: str) -> StreamState | None:
        keys = stream_keys(self.prefix, stream_key)
        flat, raw = await self._call("peek", lambda: self._peek(keys=list(keys)))
        if not flat:
            return None
        dim = int(dict(zip(flat[::2], flat[1::2], strict=True)).get(b"dim", 0)) or 1
        return self._state(stream_key, keys[1], flat, raw, dim=dim, span=max(len(raw), 1))

    def _state(
        self,
        stream_key: str,
        where: str,
        flat: list[bytes],
        raw: list[bytes],
        *,
        dim: int,
        span: int,
    ) -> StreamState:
        """A stream's state from its meta hash (HGETALL, flat) and rows as Redis holds them."""
        names, values = flat[::2], flat[1::2]
        fields = {
            k.decode(): v.decode("utf-8", "surrogatepass")
            for k, v in zip(names, values, strict=True)
        }
        try:
            stored_dim, stored_dtype = int(fields["dim"]), fields["dtype"]
            total, epoch, meta = int(fields["total"]), fields["epoch"], json.loads(fields["meta"])
            owner = fields["owner"]
        except (KeyError, ValueError) as error:
            raise CacheError(
                f"{where} in {self.kind} at {self.url} is not a GAD stream: {error}"
            ) from None
        if stored_dim != dim or stored_dtype != self.dtype_name:
            raise CacheMismatch(
                f"stream {stream_key!r} holds {stored_dim}-d {stored_dtype} rows in Redis, "
                f"attached with {dim}-d {self.dtype_name}: drop it or use another stream id"
            )
        data = b"".join(raw)
        if len(data) != len(raw) * dim * self.dtype.itemsize:
            raise CacheMismatch(
                f"stream {stream_key!r} rows in Redis are not {dim} x {self.dtype_name} "
                f"({len(data)} bytes in {len(raw)} rows)"
            )
        rows = np.frombuffer(data, self.dtype).reshape(len(raw), dim).astype(np.float32)
        rows.flags.writeable = False
        return StreamState(
            stream_key,
            dim,
            span,
            rows,
            total,
            frozen_meta(meta),
            epoch,
            owner=owner,
            dtype=self.dtype,
        )

    async def store(self, following: StreamState) -> StreamState:
        keys = list(stream_keys(self.prefix, following.key))
        expected = following.total_rows - 1
        args: list[EncodableT] = [
            expected,
            following.epoch,
            secrets.token_hex(8),
            following.span,
            self._ttl_ms,
            following.rows[-1].astype(self.dtype).tobytes(),
            encode_meta(following.meta),
            following.owner,
        ]
        status, total = await self._call("append", lambda: self._append(keys=keys, args=args))
        if status != 1:
            self._stats.conflicts += 1
            why = {
                -1: f"is no longer in the cache (expired after {self.ttl_s:g} s idle, or dropped)",
                -2: "was dropped and created again by another connection",
                -4: "was taken over by a newer connection",
            }.get(
                status,
                f"was appended by another connection: the cache has {total} rows, "
                f"this connection expected {expected}",
            )
            raise CacheConflict(f"stream {following.key!r} {why}; attach again", gone=status == -1)
        self._stats.appends += 1
        return following

    async def restore(self, state: StreamState) -> StreamState:
        keys = list(stream_keys(self.prefix, state.key))
        args = [
            state.key.encode("utf-8", "surrogatepass"),
            state.dim,
            self.dtype_name,
            state.total_rows,
            state.epoch,
            encode_meta(state.meta),
            self._ttl_ms,
            state.owner,
            *(row.astype(self.dtype).tobytes() for row in state.rows),
        ]
        done = await self._call("restore", lambda: self._restore(keys=keys, args=args))
        if not done:
            raise CacheConflict(f"stream {state.key!r} was created again by another connection")
        return state

    async def drop(self, stream_key: str) -> bool:
        keys = stream_keys(self.prefix, stream_key)
        return bool(await self._call("drop", lambda: self._client.delete(*keys)))

    async def ping(self) -> bool:
        try:
            return bool(await self._client.ping())
        except Exception:
            return False

    async def memory_usage(self, stream_key: str) -> int:
        """Bytes Redis uses for the stream's keys (MEMORY USAGE, exact: SAMPLES 0)."""
        total = 0
        for key in stream_keys(self.prefix, stream_key):
            usage = functools.partial(self._client.memory_usage, key, 0)
            used = await self._call("memory usage", usage)
            total += used or 0
        return total

    def stats(self) -> CacheStats:
        return replace(self._stats)

    async def close(self) -> None:
        await self._client.aclose()
