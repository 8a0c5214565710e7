"""The feature cache: one contract, every backend (in-process, a real Redis, and a real
3-master Redis Cluster); then what only one backend does. Cluster-only behaviour (slots,
a dead master) is in test_cluster.py."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from runtime.errors import ConfigError
from runtime.windowing import WindowSpec, build_window
from service.cache import (
    CacheConflict,
    CacheFull,
    CacheMismatch,
    CacheUnavailable,
    FeatureCache,
    MemoryFeatureCache,
    StreamState,
    create_cache,
    redact_url,
    stream_bytes,
)
from service.cache.redis import RedisFeatureCache, stream_keys
from tests.redis_server import RedisServer, free_port

DIM = 8


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Backend:
    """How a contract test makes caches of one backend and lets time pass for it."""

    name: str
    make: Callable[..., FeatureCache]  # make(dtype=..., ttl_s=...)
    advance: Callable[[float], Awaitable[None]]  # let this many seconds of idle time pass

    @contextlib.asynccontextmanager
    async def replica(self, cache: FeatureCache) -> AsyncIterator[FeatureCache]:
        """A second cache over the same store: another replica (Redis), or the same cache."""
        if isinstance(cache, RedisFeatureCache):
            async with self.make(dtype=cache.dtype_name, ttl_s=cache.ttl_s) as other:
                yield other
        else:
            yield cache


# A Redis Cluster (three masters started for the run): `integration`.
@pytest.fixture(params=["memory", "redis", pytest.param("cluster", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        clock = Clock()

        def make_memory(dtype: str = "float32", ttl_s: float = 60.0) -> FeatureCache:
            return MemoryFeatureCache(dtype_name=dtype, ttl_s=ttl_s, clock=clock)

        async def tick(seconds: float) -> None:
            clock.now += seconds

        return Backend("memory", make_memory, tick)
    cluster = request.param == "cluster"
    url = request.getfixturevalue("redis_cluster_url" if cluster else "redis_url")
    prefix = request.getfixturevalue("cluster_prefix" if cluster else "redis_prefix")

    def make_redis(dtype: str = "float32", ttl_s: float = 60.0) -> FeatureCache:
        return create_cache(url, dtype=dtype, ttl_s=ttl_s, prefix=prefix)

    return Backend(request.param, make_redis, asyncio.sleep)


def rows_of(values: list[float]) -> np.ndarray:
    return np.repeat(np.asarray(values, np.float32)[:, None], DIM, axis=1)


async def fill(cache: FeatureCache, state: StreamState, values: list[float]) -> StreamState:
    for value in values:
        state = await cache.append(state, np.full(DIM, value, np.float32), {"seq": int(value)})
    return state


def test_attach_creates_an_empty_stream(backend: Backend) -> None:
    async def main() -> None:
        async with backend.make() as cache:
            state = await cache.attach("cam-1", dim=DIM, span=4)
            assert state.rows.shape == (0, DIM) and state.rows.dtype == np.float32
            assert (state.total_rows, dict(state.meta), state.resumed) == (0, {}, False)
            again = await cache.attach("cam-1", dim=DIM, span=4)
            assert again.resumed and again.epoch == state.epoch
            assert await cache.ping()

    run(main())


def test_append_keeps_the_latest_span_rows_oldest_first(backend: Backend) -> None:
    async def main() -> None:
        async with backend.make() as cache:
            state = await fill(cache, await cache.attach("cam", dim=DIM, span=4), [0, 1, 2])
            np.testing.assert_array_equal(state.rows, rows_of([0, 1, 2]))
            state = await fill(cache, state, [3, 4, 5, 6])
            np.testing.assert_array_equal(state.rows, rows_of([3, 4, 5, 6]))
            assert state.total_rows == 7 and not state.rows.flags.writeable
            back = await cache.attach("cam", dim=DIM, span=4)
            np.testing.assert_array_equal(back.rows, state.rows)
            assert back.total_rows == 7 and dict(back.meta) == {"seq": 6}
            shorter = await cache.attach("cam", dim=DIM, span=2)  # a model with a shorter reach
            np.testing.assert_array_equal(shorter.rows, rows_of([5, 6]))

    run(main())


def test_peek_reads_a_stream_without_taking_it_over(backend: Backend) -> None:
    """What a saved example reads (service/examples/capture.py): the rows and their count,
    while the live connection keeps appending undisturbed."""

    async def main() -> None:
        async with backend.make() as cache:
            assert await cache.peek("cam") is None
            state = await fill(cache, await cache.attach("cam", dim=DIM, span=4), [0, 1, 2, 3, 4])
            async with backend.replica(cache) as replica:
                seen = await replica.peek("cam")
            assert seen is not None and seen.total_rows == 5
            np.testing.assert_array_equal(seen.rows, rows_of([1, 2, 3, 4]))
            state = await fill(cache, state, [5])  # still the owner: no CacheConflict
            assert state.total_rows == 6

    run(main())


def test_meta_round_trips_with_its_types(backend: Backend) -> None:
    meta = {"seq": 2**53 + 1, "ts": 0.1, "tiny": 1e-300, "origin": -3.25, "codec": "jpeg ✓"}

    async def main() -> None:
        async with backend.make() as cache:
            state = await cache.attach("cam", dim=DIM, span=4)
            state = await cache.append(state, np.zeros(DIM), meta)
            state = await cache.append(state, np.ones(DIM))  # None keeps the meta
            async with backend.replica(cache) as other:
                back = await other.attach("cam", dim=DIM, span=4)
            assert dict(back.meta) == meta == dict(state.meta)
            assert [type(v) for v in back.meta.values()] == [int, float, float, float, str]
            with pytest.raises(CacheMismatch, match="maps str"):
                await cache.append(back, np.ones(DIM), {"bad": [1, 2]})  # type: ignore[dict-item]
            with pytest.raises(CacheMismatch, match="limit"):
                await cache.append(back, np.ones(DIM), {"big": "x" * 20_000})

    run(main())


def test_a_stale_writer_gets_a_conflict_and_writes_nothing(backend: Backend) -> None:
    async def main() -> None:
        async with backend.make() as cache:
            first = await cache.attach("cam", dim=DIM, span=4)
            second = await cache.attach("cam", dim=DIM, span=4)  # a reconnect elsewhere
            with pytest.raises(CacheConflict, match="taken over by a newer connection"):
                await fill(cache, first, [9])  # the old connection lost the stream at once
            second = await fill(cache, second, [1])
            with pytest.raises(CacheConflict, match="taken over"):
                await fill(cache, first, [9])
            again = await cache.attach("cam", dim=DIM, span=4)
            np.testing.assert_array_equal(again.rows, rows_of([1]))
            again = await fill(cache, again, [2])  # carries on after re-attaching
            assert again.total_rows == 2 and cache.stats().conflicts == 2

    run(main())


def test_drop_then_recreate_refuses_the_old_state(backend: Backend) -> None:
    async def main() -> None:
        async with backend.make() as cache:
            old = await fill(cache, await cache.attach("cam", dim=DIM, span=4), [1, 2])
            assert await cache.drop("cam") and not await cache.drop("cam")
            with pytest.raises(CacheConflict, match="no longer in the cache"):
                await fill(cache, old, [3])
            empty = await cache.attach("cam", dim=DIM, span=4)
            old_at_zero = await cache.attach("cam", dim=DIM, span=4)
            await cache.drop("cam")
            new = await cache.attach("cam", dim=DIM, span=4)
            assert len(empty.rows) == 0 and new.epoch != empty.epoch
            with pytest.raises(CacheConflict):  # same total (0), but another life of the stream
                await fill(cache, old_at_zero, [3])

    run(main())


def test_a_lost_stream_is_restored_from_the_live_copy(backend: Backend) -> None:
    async def main() -> None:
        async with backend.make() as cache:
            live = await fill(cache, await cache.attach("cam", dim=DIM, span=3), [1, 2, 3, 4])
            await cache.drop("cam")  # as if the TTL passed or Redis restarted empty
            with pytest.raises(CacheConflict) as lost:
                await fill(cache, live, [5])
            assert lost.value.gone
            restored = await cache.restore(live)
            live = await fill(cache, restored, [5])
            async with backend.replica(cache) as other:
                again = await other.attach("cam", dim=DIM, span=3)
            assert again.total_rows == 5 and again.epoch == live.epoch
            np.testing.assert_array_equal(again.rows, rows_of([3, 4, 5]))
            assert dict(again.meta) == {"seq": 5}
            with pytest.raises(CacheConflict) as taken:  # it exists again: not restored twice
                await cache.restore(restored)
            assert not taken.value.gone

    run(main())


def test_idle_streams_expire_and_every_use_refreshes_the_ttl(backend: Backend) -> None:
    async def main() -> None:
        async with backend.make(ttl_s=1.0) as cache:
            state = await fill(cache, await cache.attach("cam", dim=DIM, span=4), [1])
            await backend.advance(0.6)
            state = await fill(cache, state, [2])  # refreshes
            await backend.advance(0.6)  # 1.2 s after creation, 0.6 s after the last use
            back = await cache.attach("cam", dim=DIM, span=4)
            assert back.resumed and back.total_rows == 2
            await backend.advance(1.1)
            with pytest.raises(CacheConflict, match="expired"):
                await fill(cache, back, [3])
            fresh = await cache.attach("cam", dim=DIM, span=4)
            assert not fresh.resumed and fresh.total_rows == 0

    run(main())


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_rows_are_the_stored_dtype_values_live_and_after_reattach(
    backend: Backend, dtype: str
) -> None:
    row = np.array([0.1, 1 / 3, 1e-6, -2.7182817, 65504.0, 1234.5678, 3e-8, 0.0], np.float64)
    expected = row.astype(dtype).astype(np.float32)

    async def main() -> None:
        async with backend.make(dtype=dtype) as cache:
            state = await cache.append(await cache.attach("cam", dim=DIM, span=4), row)
            assert state.rows.dtype == np.float32
            np.testing.assert_array_equal(state.rows[0], expected)
            async with backend.replica(cache) as other:
                back = await other.attach("cam", dim=DIM, span=4)
            np.testing.assert_array_equal(back.rows[0], expected)
            too_big = np.full(DIM, 1e5)
            if dtype == "float16":
                with pytest.raises(CacheMismatch, match="float16"):
                    await cache.append(back, too_big)
            else:
                await cache.append(back, too_big)
            with pytest.raises(CacheMismatch, match="NaN"):
                await cache.append(back, np.full(DIM, np.nan))

    run(main())
    if dtype == "float16":
        assert not np.array_equal(expected, row.astype(np.float32))  # it did round


def test_wrong_feature_size_is_refused(backend: Backend) -> None:
    async def main() -> None:
        async with backend.make() as cache:
            state = await fill(cache, await cache.attach("cam", dim=DIM, span=4), [1])
            with pytest.raises(CacheMismatch, match=rf"shape \[{DIM}\], got \[{DIM + 1}\]"):
                await cache.append(state, np.zeros(DIM + 1))
            with pytest.raises(CacheMismatch, match=f"holds {DIM}-d"):
                await cache.attach("cam", dim=2 * DIM, span=4)
            with pytest.raises(CacheMismatch, match="non-empty"):
                await cache.attach("", dim=DIM, span=4)

    run(main())


def test_arbitrary_stream_keys_do_not_collide(backend: Backend) -> None:
    keys = ["a", "a:b", "a/b", "a:b:rows", "a:b:meta", "{a}", "кухня/камера 2 🎥", "x" * 1000]

    async def main() -> None:
        async with backend.make() as cache:
            for value, key in enumerate(keys):
                await fill(cache, await cache.attach(key, dim=DIM, span=4), [value, value])
            async with backend.replica(cache) as other:
                for value, key in enumerate(keys):
                    state = await other.attach(key, dim=DIM, span=4)
                    np.testing.assert_array_equal(state.rows, rows_of([value, value]))
                    assert state.key == key

    run(main())


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_a_reattached_stream_continues_identically(backend: Backend, dtype: str) -> None:
    """Live for 30 frames, reconnect (another replica under Redis), 10 more: same windows."""
    spec = WindowSpec(long_frames=3, short_frames=4, long_stride=2)
    video = np.random.default_rng(0).normal(size=(40, DIM)).astype(np.float32)
    offline = video.astype(dtype).astype(np.float32)  # what evaluation sees, stored dtype

    async def main() -> None:
        async with backend.make(dtype=dtype) as cache:
            state = await cache.attach("cam", dim=DIM, span=spec.span)
            for t in range(30):
                meta = {"seq": t, "ts": t / 4, "slot": t % 3}
                state = await cache.append(state, video[t], meta)
                live = build_window(state.rows, len(state.rows) - 1, spec)
                np.testing.assert_array_equal(live[0], build_window(offline, t, spec)[0])
            async with backend.replica(cache) as replica:
                back = await replica.attach("cam", dim=DIM, span=spec.span)
                np.testing.assert_array_equal(back.rows, state.rows)
                assert (back.total_rows, dict(back.meta), back.epoch) == (
                    state.total_rows,
                    dict(state.meta),
                    state.epoch,
                )
                for t in range(back.total_rows, 40):
                    back = await replica.append(back, video[t], {"seq": t})
                    window, mask = build_window(back.rows, len(back.rows) - 1, spec)
                    expected = build_window(offline, t, spec)
                    np.testing.assert_array_equal(window, expected[0])
                    np.testing.assert_array_equal(mask, expected[1])

    run(main())


def test_concurrent_streams_stay_consistent(backend: Backend) -> None:
    streams, frames, span = 30, 12, 5

    async def one(cache: FeatureCache, index: int) -> StreamState:
        state = await cache.attach(f"cam-{index}", dim=DIM, span=span)
        for t in range(frames):
            state = await cache.append(state, np.full(DIM, index * 100 + t), {"seq": t})
            await asyncio.sleep(0)
        return state

    async def main() -> None:
        async with backend.make() as cache:
            live = await asyncio.gather(*(one(cache, i) for i in range(streams)))
            async with backend.replica(cache) as other:
                for i, state in enumerate(live):
                    back = await other.attach(f"cam-{i}", dim=DIM, span=span)
                    expected = rows_of([i * 100 + t for t in range(frames - span, frames)])
                    np.testing.assert_array_equal(back.rows, expected)
                    np.testing.assert_array_equal(state.rows, expected)
                    assert back.total_rows == frames and back.meta["seq"] == frames - 1
            assert cache.stats().appends == streams * frames

    run(main())


def test_concurrent_writers_of_one_stream_exactly_one_wins(backend: Backend) -> None:
    async def main() -> None:
        async with backend.make() as cache:
            handles = [await cache.attach("cam", dim=DIM, span=4) for _ in range(8)]
            results = await asyncio.gather(
                *(cache.append(h, np.full(DIM, i)) for i, h in enumerate(handles)),
                return_exceptions=True,
            )
            won = [r for r in results if isinstance(r, StreamState)]
            assert len(won) == 1
            assert all(isinstance(r, CacheConflict) for r in results if r not in won)
            back = await cache.attach("cam", dim=DIM, span=4)
            np.testing.assert_array_equal(back.rows, won[0].rows)

    run(main())


# --- the in-process backend --------------------------------------------------------------


def test_memory_bound_and_sweep() -> None:
    clock = Clock()
    cache = MemoryFeatureCache(ttl_s=10, max_streams=2, sweep_s=1, clock=clock)

    async def main() -> None:
        await fill(cache, await cache.attach("a", dim=DIM, span=4), [1, 2, 3, 4, 5])
        await cache.attach("b", dim=DIM, span=4)
        with pytest.raises(CacheFull, match="holds 2 streams"):
            await cache.attach("c", dim=DIM, span=4)
        stats = cache.stats()
        assert (stats.streams, stats.row_bytes) == (2, 4 * DIM * 4)
        clock.now += 11  # both idle past the TTL: the sweep frees them without a lookup
        assert cache.stats().streams == 0 and cache.stats().expired == 2
        await cache.attach("c", dim=DIM, span=4)

    run(main())


def test_memory_cache_shares_rows_with_the_live_stream() -> None:
    cache = MemoryFeatureCache()

    async def main() -> None:
        state = await fill(cache, await cache.attach("a", dim=DIM, span=4), [1, 2])
        assert (await cache.attach("a", dim=DIM, span=4)).rows is state.rows  # one copy

    run(main())


# --- the Redis backend -------------------------------------------------------------------


def test_factory_picks_the_backend_and_refuses_bad_settings(redis_url: str) -> None:
    assert isinstance(create_cache(None), MemoryFeatureCache)
    assert isinstance(create_cache("memory", dtype="float16"), MemoryFeatureCache)
    cache = create_cache(redis_url, prefix="gadtest-factory")
    assert isinstance(cache, RedisFeatureCache)
    run(cache.close())
    with pytest.raises(ConfigError, match="redis://"):
        create_cache("http://localhost:6379")
    with pytest.raises(ConfigError, match="'localhost:6379'"):
        create_cache("localhost:6379")
    with pytest.raises(ConfigError, match="float16"):
        create_cache(None, dtype="bfloat16")
    with pytest.raises(ConfigError, match="prefix"):
        create_cache(redis_url, prefix="a{b}")
    assert stream_bytes(span=160, dim=1280, dtype="float16") == 409_600


def test_key_names_are_hashed_into_one_cluster_slot() -> None:
    rows, meta = stream_keys("gad", "site/cam:1 " + "x" * 1000)
    assert rows.startswith("gad:stream:{") and rows.endswith("}:rows") and len(rows) < 60
    assert rows[: rows.index("}")] == meta[: meta.index("}")]


def test_passwords_are_redacted() -> None:
    assert redact_url("redis://user:s3cret@host:6380/1") == "redis://user:***@host:6380/1"
    assert redact_url("rediss://:s3cret@host") == "rediss://:***@host"
    assert "s3cret" not in redact_url("unix:///run/redis.sock?db=0&password=s3cret")


def test_unreachable_redis_fails_fast_with_a_redacted_url() -> None:
    url = f"redis://gad:s3cret@127.0.0.1:{free_port()}/0"  # nothing listens there

    async def main() -> None:
        async with create_cache(url, timeout_s=0.5) as cache:
            assert not await cache.ping()
            with pytest.raises(CacheUnavailable) as caught:
                await cache.attach("cam", dim=DIM, span=4)
            assert "s3cret" not in str(caught.value) and "gad:***@127.0.0.1" in str(caught.value)
            assert cache.stats().unavailable == 1

    run(asyncio.wait_for(main(), 10))


def test_a_redis_that_never_answers_times_out() -> None:
    with socket.socket() as silent:  # accepts connections (kernel backlog), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"

        async def main() -> float:
            async with create_cache(url, timeout_s=0.3, retries=1) as cache:
                assert not await cache.ping()
                start = time.monotonic()
                with pytest.raises(CacheUnavailable, match="unreachable"):
                    await cache.attach("cam", dim=DIM, span=4)
                return time.monotonic() - start

        assert run(asyncio.wait_for(main(), 10)) < 3.0  # (1 + retries) x 0.3 s, plus slack


def test_redis_outage_is_reported_and_recovered_without_a_restart(
    private_redis: RedisServer,
) -> None:
    async def main() -> None:
        async with create_cache(private_redis.url, timeout_s=0.5, prefix="outage") as cache:
            state = await fill(cache, await cache.attach("cam", dim=DIM, span=4), [1])
            private_redis.stop()
            assert not await asyncio.wait_for(cache.ping(), 10)
            start = time.monotonic()
            with pytest.raises(CacheUnavailable, match=f"127.0.0.1:{private_redis.port}"):
                await asyncio.wait_for(fill(cache, state, [2]), 10)
            assert time.monotonic() - start < 3.0
            private_redis.restart()  # same port, empty (no persistence)
            assert await cache.ping()
            with pytest.raises(CacheConflict, match="no longer"):  # its data went with it
                await fill(cache, state, [2])
            state = await fill(cache, await cache.attach("cam", dim=DIM, span=4), [3])
            private_redis.restart()  # now with pooled connections alive: they go stale
            state = await fill(cache, await cache.attach("cam", dim=DIM, span=4), [4])
            np.testing.assert_array_equal(state.rows, rows_of([4]))

    run(main())


def test_unix_socket_urls_work(private_redis: RedisServer) -> None:
    async def main() -> None:
        async with create_cache(private_redis.unix_url, prefix="unix") as cache:
            state = await fill(cache, await cache.attach("cam", dim=DIM, span=4), [1])
            assert state.total_rows == 1 and await cache.ping()

    run(main())


def test_a_replica_with_another_dtype_is_refused(redis_url: str, redis_prefix: str) -> None:
    async def main() -> None:
        async with (
            create_cache(redis_url, prefix=redis_prefix) as wide,
            create_cache(redis_url, prefix=redis_prefix, dtype="float16") as half,
        ):
            await wide.attach("cam", dim=DIM, span=4)
            with pytest.raises(CacheMismatch, match="float32 rows in Redis"):
                await half.attach("cam", dim=DIM, span=4)

    run(main())


def test_a_retried_append_whose_write_landed_is_not_a_conflict(
    redis_url: str, redis_prefix: str
) -> None:
    """redis-py retries a call whose reply was lost; the nonce makes the append idempotent."""

    async def main() -> None:
        async with create_cache(redis_url, prefix=redis_prefix) as cache:
            assert isinstance(cache, RedisFeatureCache)
            state = await cache.attach("cam", dim=DIM, span=4)
            keys = list(stream_keys(redis_prefix, "cam"))
            row = np.ones(DIM, "<f4").tobytes()
            args = [0, state.epoch, "nonce-1", 4, 60_000, row, "{}", state.owner]
            assert await cache._append(keys=keys, args=args) == [1, 1]
            assert await cache._append(keys=keys, args=args) == [1, 1]  # the retry
            assert await cache._append(keys=keys, args=[*args[:2], "other", *args[3:]]) == [-3, 1]
            assert (await cache.attach("cam", dim=DIM, span=4)).total_rows == 1

    run(main())


def test_redis_memory_per_stream(redis_url: str, redis_prefix: str) -> None:
    """A full stream (span 160, 1280-d) costs its rows plus a bounded overhead."""
    span, dim = 160, 1280
    row = np.random.default_rng(0).normal(size=dim).astype(np.float32)

    async def main() -> None:
        for dtype in ("float32", "float16"):
            async with create_cache(redis_url, prefix=redis_prefix, dtype=dtype) as cache:
                assert isinstance(cache, RedisFeatureCache)
                state = await cache.attach(dtype, dim=dim, span=span)
                for _ in range(span + 3):
                    state = await cache.append(state, row, {"seq": 1})
                used = await cache.memory_usage(dtype)
                payload = stream_bytes(span=span, dim=dim, dtype=dtype)
                assert payload < used < 1.3 * payload, (dtype, used, payload)

    run(main())


def test_a_stream_whose_rows_were_evicted_starts_over(redis_url: str, redis_prefix: str) -> None:
    """Eviction can take a stream's two keys apart; a truncated window is never served."""

    async def main() -> None:
        async with create_cache(redis_url, prefix=redis_prefix) as cache:
            state = await fill(cache, await cache.attach("cam", dim=DIM, span=4), [1, 2, 3])
            rows_key, _ = stream_keys(redis_prefix, "cam")
            await cache._client.delete(rows_key)  # as volatile-ttl eviction might
            again = await cache.attach("cam", dim=DIM, span=4)
            assert not again.resumed and again.total_rows == 0 and again.epoch != state.epoch

    run(main())
