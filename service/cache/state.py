"""The per-stream feature cache: each stream's latest rows, so a reconnect continues.

    cache = create_cache(settings.redis_url, dtype="float32", ttl_s=300)   # None → in-process
    state = await cache.attach(stream_id, dim=1280, span=spec.span)      # resume or start
    state = await cache.store(state.pushed(features, {"seq": 17, "ts": 4.25}))  # per frame
    window, mask = build_window(state.rows, len(state.rows) - 1, spec)

The caller computes a stream's next state (`StreamState.pushed`: the one place a row is
rounded through the storage dtype and meta is checked) and the cache stores it (`store`);
`append(state, row, meta)` is the two in one call.

Write-through: the handler of a live stream keeps its `StreamState` (the rows in its own
memory) and per frame only pushes the new row; the whole state is read once, in `attach`,
when a stream (re)connects, on this replica or any other sharing the Redis.

A `StreamState` is immutable: `append` returns the next one, so a window built from an older
state stays valid. Its rows are float32 holding values rounded through the cache's storage
dtype, on the live path and after a reattach alike, so a resumed stream's windows are
bit-identical to an uninterrupted one's (float32 storage is also bit-identical to offline
evaluation; float16 halves Redis memory). Rows are float32 in process because `build_window`
copies them per frame and numpy's float16 → float32 conversion costs ~5x that copy; this
way each row is converted once.

Optimistic concurrency: `store` carries the state's `total_rows` (rows ever appended),
`epoch` (a random id given when the stream was created) and `owner` (a random id given by
each `attach`: the newest connection owns the stream). If another connection attached or
appended meanwhile, or the stream expired or was dropped, `store` raises `CacheConflict`
and writes nothing.

Memory per stream: span x D x itemsize of rows (`stream_bytes`) plus overhead. Measured for
span 160, D 1280 (Redis 7.0, jemalloc, `MEMORY USAGE`): float32 819,200 B of rows → 989,848 B
in Redis (+21%: one 5 KiB row per 8 KiB list node, rounded up to a 6 KiB allocation);
float16 409,600 → 439,816 B (+7%). In process ~820.9 KB (float32 rows + ~1.7 KB), shared
with the live handler, so a connected stream costs one copy. asyncio only: not thread-safe.
"""

from __future__ import annotations

import json
import secrets
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Self

import numpy as np

from runtime.errors import ConfigError, GADError

MetaValue = float | int | str
Meta = Mapping[str, MetaValue]

DTYPES: dict[str, np.dtype[np.floating]] = {  # explicit byte order
    "float32": np.dtype("<f4"),
    "float16": np.dtype("<f2"),
}
DEFAULT_TTL_S = 300.0
DEFAULT_MAX_STREAMS = 10_000
MAX_META_BYTES = 16_384  # "small per-stream values": a seq, timestamps, a sampler slot


class CacheError(GADError):
    """The feature cache could not do what was asked."""


class CacheUnavailable(CacheError):
    """The cache backend (Redis) is unreachable or timed out; the message names its URL."""


class CacheConflict(CacheError):
    """The stream changed under this connection (appended elsewhere, expired, dropped).

    `gone` is True when the stream is simply no longer in the cache (expired, dropped, or
    Redis restarted without persistence): the live handler may `restore` its own copy."""

    def __init__(self, message: str, *, gone: bool = False) -> None:
        super().__init__(message)
        self.gone = gone


class CacheFull(CacheError):
    """No room for another stream (in-process bound reached, or Redis out of memory)."""


class CacheMismatch(CacheError, ValueError):
    """A row, meta or stream that doesn't fit: wrong feature size, dtype, non-finite values."""


def storage_dtype(name: str) -> np.dtype[np.floating]:
    try:
        return DTYPES[name]
    except KeyError:
        raise ConfigError(f"cache dtype must be one of {sorted(DTYPES)}, got {name!r}") from None


def stream_bytes(*, span: int, dim: int, dtype: str = "float32") -> int:
    """Bytes of rows a full stream holds in the backend (without per-key overhead)."""
    return span * dim * storage_dtype(dtype).itemsize


@dataclass(frozen=True, eq=False)  # eq would compare arrays elementwise
class StreamState:
    """One stream as the cache holds it. Immutable: `append` returns the next state."""

    key: str
    dim: int
    span: int  # rows kept: the window's reach (WindowSpec.span)
    rows: np.ndarray  # [n <= span, dim] float32, read-only, oldest first
    total_rows: int  # rows ever appended = the index of the next row
    meta: Meta  # the handler's small values that must survive a reconnect; opaque here
    epoch: str  # random id set when the stream was created; a recreated stream differs
    resumed: bool = False  # attach found this stream in the cache (rather than creating it)
    # The connection that attached last owns the stream: an older connection's appends are
    # refused, so a client that reconnects (to any replica) is never raced by its old one.
    owner: str = ""
    dtype: np.dtype[np.floating] = DTYPES["float32"]  # the cache's storage dtype

    @property
    def nbytes(self) -> int:
        return self.rows.nbytes

    def pushed(self, row: np.ndarray, meta: Meta | None = None) -> StreamState:
        """The state after appending `row` [dim] (rounded through the storage dtype) and
        setting `meta` (None keeps it). Raises CacheMismatch for a row or meta that won't fit."""
        stored = round_row(row, dim=self.dim, dtype=self.dtype)
        meta = self.meta if meta is None else check_meta(meta)
        keep = self.rows[max(0, len(self.rows) - self.span + 1) :]
        rows = np.concatenate([keep, stored[None]])
        rows.flags.writeable = False
        return replace(self, rows=rows, total_rows=self.total_rows + 1, meta=meta)

    def with_meta(self, meta: Meta) -> StreamState:
        """The same rows with `meta` (checked)."""
        return replace(self, meta=check_meta(meta))


def empty_state(key: str, *, dim: int, span: int, dtype: np.dtype[np.floating]) -> StreamState:
    rows = np.zeros((0, dim), np.float32)
    rows.flags.writeable = False
    epoch = secrets.token_hex(8)
    return StreamState(key, dim, span, rows, 0, frozen_meta({}), epoch, dtype=dtype)


def frozen_meta(meta: Meta) -> Meta:
    return MappingProxyType(dict(meta))


def check_key(stream_key: str, *, dim: int, span: int) -> None:
    if not isinstance(stream_key, str) or not stream_key:
        raise CacheMismatch(f"stream key must be a non-empty string, got {stream_key!r}")
    if dim <= 0 or span <= 0:
        raise CacheMismatch(f"a stream needs dim > 0 and span > 0, got dim {dim}, span {span}")


def round_row(row: np.ndarray, *, dim: int, dtype: np.dtype) -> np.ndarray:
    """`row` [dim] as float32 holding the storage dtype's values; refuses what won't fit."""
    row = np.asarray(row)
    if row.shape != (dim,):
        raise CacheMismatch(f"a row must have shape [{dim}], got {list(row.shape)}")
    if row.dtype.kind not in "fiu":
        raise CacheMismatch(f"a row must hold numbers, got dtype {row.dtype}")
    if not np.isfinite(row).all():
        raise CacheMismatch("row has NaN or infinite values")
    with np.errstate(over="ignore"):
        stored = row.astype(dtype)
    if not np.isfinite(stored).all():
        raise CacheMismatch(
            f"row overflows {dtype.name} storage (largest finite value "
            f"{float(np.finfo(dtype).max):g}); got max |x| = {float(np.abs(row).max()):g}"
        )
    return stored.astype(np.float32)


def check_meta(meta: Meta) -> Meta:
    """`meta` frozen, refused unless it maps str → int | float | str within the size limit
    (whatever the backend)."""
    for name, value in meta.items():
        if not isinstance(name, str) or not isinstance(value, (int, float, str)):
            raise CacheMismatch(
                f"stream meta maps str → int | float | str, got {name!r}: {type(value).__name__}"
            )
    encode_meta(meta)
    return frozen_meta(meta)


def encode_meta(meta: Meta) -> str:
    text = json.dumps(dict(meta), separators=(",", ":"), ensure_ascii=False)
    if (size := len(text.encode("utf-8", "surrogatepass"))) > MAX_META_BYTES:
        raise CacheMismatch(f"stream meta is {size} bytes as JSON, limit {MAX_META_BYTES}")
    return text


@dataclass
class CacheStats:
    """Counters since start (the metrics module exports these), plus what is held now."""

    backend: str
    dtype: str
    streams: int | None = None  # held now; None where unknown (Redis: shared by replicas)
    row_bytes: int | None = None  # bytes of rows held now (in-process)
    attaches: int = 0
    resumes: int = 0  # attaches that found the stream in the cache
    appends: int = 0
    conflicts: int = 0
    expired: int = 0  # streams removed after the idle TTL (in-process sweep)
    unavailable: int = 0  # operations refused because the backend was unreachable


class FeatureCache(ABC):
    """The per-stream rolling feature rows, in process or in Redis. See the module doc."""

    dtype: np.dtype  # the storage dtype (rows round through it)
    ttl_s: float  # idle time after which a stream is forgotten

    @abstractmethod
    async def attach(self, stream_key: str, *, dim: int, span: int) -> StreamState:
        """The stream's state, created empty if absent; refreshes its idle TTL.

        Raises CacheMismatch if the stream was created with another feature size or dtype.
        Returns at most the latest `span` rows.
        """

    @abstractmethod
    async def peek(self, stream_key: str) -> StreamState | None:
        """The stream's state as stored (None: not in the cache), read only: no owner
        taken, the TTL not refreshed, so the live connection goes on undisturbed."""

    @abstractmethod
    async def store(self, following: StreamState) -> StreamState:
        """Store `following`, a state one row past the one the cache holds (made by
        `StreamState.pushed`): its newest row and its meta, trimmed to span, the TTL
        refreshed, atomically. Returns it.

        Raises CacheConflict, writing nothing, when the cache no longer holds the state
        before it (another connection appended, or the stream expired or was dropped).
        """

    async def append(
        self, state: StreamState, row: np.ndarray, meta: Meta | None = None
    ) -> StreamState:
        """`store(state.pushed(row, meta))`: push `row` [dim], set meta (None keeps it)."""
        return await self.store(state.pushed(row, meta))

    @abstractmethod
    async def restore(self, state: StreamState) -> StreamState:
        """Put a live handler's state back after the cache lost the stream (`gone`).
        Raises CacheConflict when another connection has created the stream meanwhile."""

    @abstractmethod
    async def drop(self, stream_key: str) -> bool:
        """Forget a stream; whether it was there."""

    @abstractmethod
    async def ping(self) -> bool:
        """Whether the cache is reachable now (for /readyz). Never raises, never hangs."""

    @abstractmethod
    def stats(self) -> CacheStats: ...

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the in-process cache has none."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
