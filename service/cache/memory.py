"""The in-process backend of the feature cache (see service/cache/state.py)."""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from runtime.errors import ConfigError
from service.cache.state import (
    DEFAULT_MAX_STREAMS,
    DEFAULT_TTL_S,
    CacheConflict,
    CacheFull,
    CacheMismatch,
    CacheStats,
    FeatureCache,
    StreamState,
    check_key,
    empty_state,
    storage_dtype,
)


@dataclass
class _Entry:
    state: StreamState
    expires: float


@dataclass
class MemoryFeatureCache(FeatureCache):
    """The in-process backend: one replica, nothing to install. Same semantics as Redis.

    Idle streams expire after `ttl_s`, checked lazily on access and by a sweep at most
    every `sweep_s` (run from any call, so /readyz probes and metric scrapes drive it).
    At most `max_streams` streams are held; one more raises CacheFull. The live handler
    and the cache share each state's rows, so a connected stream costs one copy.
    """

    dtype_name: str = "float32"
    ttl_s: float = DEFAULT_TTL_S
    max_streams: int = DEFAULT_MAX_STREAMS
    sweep_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    _entries: dict[str, _Entry] = field(default_factory=dict, repr=False)
    _next_sweep: float = field(default=-math.inf, repr=False)
    _stats: CacheStats = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.dtype = storage_dtype(self.dtype_name)
        if not self.ttl_s > 0 or self.max_streams <= 0:
            raise ConfigError(
                f"cache needs ttl_s > 0 and max_streams > 0, got {self.ttl_s}, {self.max_streams}"
            )
        self._stats = CacheStats(backend="memory", dtype=self.dtype_name)

    def _live(self, stream_key: str, now: float) -> _Entry | None:
        entry = self._entries.get(stream_key)
        if entry is not None and entry.expires <= now:
            del self._entries[stream_key]
            self._stats.expired += 1
            return None
        return entry

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.sweep_s
        gone = [key for key, entry in self._entries.items() if entry.expires <= now]
        for key in gone:
            del self._entries[key]
        self._stats.expired += len(gone)

    async def attach(self, stream_key: str, *, dim: int, span: int) -> StreamState:
        check_key(stream_key, dim=dim, span=span)
        now = self.clock()
        self._sweep(now)
        entry = self._live(stream_key, now)
        if entry is None:
            if len(self._entries) >= self.max_streams:
                self._next_sweep = -math.inf
                self._sweep(now)
            if len(self._entries) >= self.max_streams:
                raise CacheFull(
                    f"the in-process cache holds {self.max_streams} streams, its limit; "
                    f"raise max_streams, lower ttl_s ({self.ttl_s:g} s) or use Redis"
                )
            entry = self._entries[stream_key] = _Entry(
                empty_state(stream_key, dim=dim, span=span, dtype=self.dtype), now + self.ttl_s
            )
            entry.state = replace(entry.state, owner=secrets.token_hex(8))
        else:
            if entry.state.dim != dim:
                raise CacheMismatch(
                    f"stream {stream_key!r} holds {entry.state.dim}-d rows, attached with {dim}"
                )
            self._stats.resumes += 1
            state = entry.state
            if len(state.rows) > span:
                rows = state.rows[len(state.rows) - span :]
                state = replace(state, rows=rows)
            entry.state = replace(state, span=span, resumed=True, owner=secrets.token_hex(8))
            entry.expires = now + self.ttl_s
        self._stats.attaches += 1
        return entry.state

    async def peek(self, stream_key: str) -> StreamState | None:
        entry = self._live(stream_key, self.clock())
        return None if entry is None else entry.state

    async def store(self, following: StreamState) -> StreamState:
        now = self.clock()
        self._sweep(now)
        entry = self._live(following.key, now)
        if entry is None or entry.state.epoch != following.epoch:
            self._stats.conflicts += 1
            raise CacheConflict(
                f"stream {following.key!r} is no longer in the cache (expired after "
                f"{self.ttl_s:g} s idle, or dropped); attach again",
                gone=entry is None,
            )
        if entry.state.owner != following.owner:
            self._stats.conflicts += 1
            raise CacheConflict(f"stream {following.key!r} was taken over by a newer connection")
        if entry.state.total_rows != following.total_rows - 1:
            self._stats.conflicts += 1
            raise CacheConflict(
                f"stream {following.key!r} was appended by another connection: the cache has "
                f"{entry.state.total_rows} rows, this connection expected "
                f"{following.total_rows - 1}; attach again"
            )
        entry.state = following
        entry.expires = now + self.ttl_s
        self._stats.appends += 1
        return following

    async def restore(self, state: StreamState) -> StreamState:
        now = self.clock()
        if self._live(state.key, now) is not None:
            raise CacheConflict(f"stream {state.key!r} was created again by another connection")
        self._entries[state.key] = _Entry(state, now + self.ttl_s)
        return state

    async def drop(self, stream_key: str) -> bool:
        return self._entries.pop(stream_key, None) is not None

    async def ping(self) -> bool:
        self._sweep(self.clock())
        return True

    def stats(self) -> CacheStats:
        self._sweep(self.clock())
        held = [entry.state.nbytes for entry in self._entries.values()]
        return replace(self._stats, streams=len(held), row_bytes=sum(held))
