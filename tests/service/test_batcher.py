"""The micro-batcher, without real time: its clock is injected (a fake one here), and when a
batch stops gathering is `GatherPolicy`, a pure function of the clock's readings. No test
sleeps or asserts on how long anything took (timings belong to the benchmarks); a timeout
only keeps a wrong batcher from hanging the suite."""

import asyncio
import threading
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest

from runtime.engine import EngineInputError, OnnxEngine, check_windows
from service.batcher import BatcherClosed, GatherPolicy, MicroBatcher, stack_windows
from tests.model.helpers import FEATURE_DIM

T = TypeVar("T")
HANG_S = 30.0  # a guard against a batcher that never answers, not a measurement
FOREVER_S = 3600.0  # a max_wait_s that real time never reaches during a test


def echo(features: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Each row's answer is its own last frame's first value and its real frame count."""
    return np.stack([features[:, -1, 0], mask.sum(1).astype(np.float32)], 1)


def window(value: float, time: int = 4) -> tuple[np.ndarray, np.ndarray]:
    return np.full((time, 3), value, np.float32), np.ones(time, np.int64)


class ManualClock:
    """Stands still until a test (or a fake run) moves it; counts its readings."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.readings = 0

    def __call__(self) -> float:
        self.readings += 1
        return self.now


class TickingClock:
    """Each reading `step` seconds after the last: by the batcher's next look, any deadline
    shorter than `step` has passed."""

    def __init__(self, step: float = 1.0) -> None:
        self.step = step
        self.now = 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now


async def answered(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, timeout=HANG_S)


async def until(condition, what: str) -> None:
    """Let the event loop run until `condition()` holds (no clock involved)."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened: {what}")


# --- the gathering policy: pure ----------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "now", "expected"),
    [
        (1, 10.0, 0.5),  # the first item just arrived: the whole wait is left
        (1, 10.25, 0.25),
        (3, 10.25, 0.25),  # the size does not move the deadline
        (3, 10.5, None),  # the deadline: run now
        (3, 99.0, None),
        (4, 10.0, None),  # full: run now, whatever the time
        (5, 10.0, None),
    ],
)
def test_gather_policy_waits_until_full_or_the_deadline(
    size: int, now: float, expected: float | None
) -> None:
    policy = GatherPolicy(max_batch=4, max_wait_s=0.5)
    assert policy.wait_s(size, first_arrived=10.0, now=now) == expected
    assert policy.full(size) == (size >= 4)


def test_gather_policy_without_a_wait_and_with_batches_of_one() -> None:
    assert GatherPolicy(max_batch=8, max_wait_s=0.0).wait_s(1, first_arrived=5.0, now=5.0) is None
    assert GatherPolicy(max_batch=1, max_wait_s=FOREVER_S).wait_s(1, 5.0, 5.0) is None


@pytest.mark.parametrize(("max_batch", "max_wait_s"), [(0, 0.1), (4, -0.1)])
def test_gather_policy_refuses_nonsense(max_batch: int, max_wait_s: float) -> None:
    with pytest.raises(ValueError, match="max_batch >= 1"):
        GatherPolicy(max_batch, max_wait_s)
    with pytest.raises(ValueError, match="max_batch >= 1"):
        MicroBatcher(echo, max_batch=max_batch, max_wait_s=max_wait_s)


# --- the batcher on a fake clock ---------------------------------------------------------


def test_concurrent_callers_each_get_their_own_row() -> None:
    async def main() -> tuple[list[np.ndarray], MicroBatcher]:
        batcher = MicroBatcher(echo, max_batch=8, max_wait_s=0.5, clock=TickingClock())
        async with batcher:
            results = await answered(
                asyncio.gather(*(batcher.submit(*window(i)) for i in range(50)))
            )
        return results, batcher

    results, batcher = asyncio.run(main())
    assert [float(r[0]) for r in results] == [float(i) for i in range(50)]
    # All 50 were queued before the batcher looked: full batches, then the rest.
    assert batcher.stats.sizes == [8, 8, 8, 8, 8, 8, 2]
    assert batcher.stats.windows == 50 and batcher.stats.batches == 7


def test_a_lone_window_runs_once_its_clock_deadline_passes() -> None:
    """An hour of max_wait_s, which the batcher's clock passes by its next look: the lone
    window runs alone (on real time it would wait the hour, and time out)."""

    async def main() -> list[int]:
        clock = TickingClock(step=2 * FOREVER_S)
        batcher = MicroBatcher(echo, max_batch=64, max_wait_s=FOREVER_S, clock=clock)
        async with batcher:
            assert float((await answered(batcher.submit(*window(1))))[0]) == 1.0
            assert float((await answered(batcher.submit(*window(2))))[0]) == 2.0
        return batcher.stats.sizes

    assert asyncio.run(main()) == [1, 1]  # past the deadline: apart


def test_a_window_arriving_within_the_wait_joins_the_batch() -> None:
    """The clock stands still, so the deadline never passes: the batcher takes the first
    window, waits, and the second one (sent while it waits) fills the batch."""

    async def main() -> list[int]:
        clock = ManualClock()
        batcher = MicroBatcher(echo, max_batch=2, max_wait_s=FOREVER_S, clock=clock)
        async with batcher:
            first = asyncio.ensure_future(batcher.submit(*window(1)))
            # Read twice: the window's arrival, then the batcher's look at its deadline.
            await until(lambda: clock.readings == 2 and batcher.pending == 0, "the batcher waits")
            assert not first.done()
            clock.now = FOREVER_S / 2  # still within the wait
            second = asyncio.ensure_future(batcher.submit(*window(2)))
            rows = await answered(asyncio.gather(first, second))
        assert [float(r[0]) for r in rows] == [1.0, 2.0]
        return batcher.stats.sizes

    assert asyncio.run(main()) == [2]


def test_windows_already_queued_join_even_past_the_deadline() -> None:
    """Taking what is queued costs nothing: only the wait for more is bounded."""

    async def main() -> list[int]:
        batcher = MicroBatcher(echo, max_batch=64, max_wait_s=0.0, clock=TickingClock())
        async with batcher:
            await answered(asyncio.gather(*(batcher.submit(*window(i)) for i in range(3))))
        return batcher.stats.sizes

    assert asyncio.run(main()) == [3]


def test_on_batch_reports_waits_and_run_times_on_the_batchers_clock() -> None:
    clock = ManualClock()
    reports: list[tuple[int, float, float]] = []

    def run(features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        clock.now += 0.25  # a forward pass of a quarter second, on the fake clock
        return echo(features, mask)

    async def main() -> None:
        batcher = MicroBatcher(
            run,
            max_batch=1,
            max_wait_s=FOREVER_S,
            clock=clock,
            on_batch=lambda *report: reports.append(report),
        )
        async with batcher:  # both arrive at 0; the second waits for the first's run
            await answered(asyncio.gather(batcher.submit(*window(1)), batcher.submit(*window(2))))

    asyncio.run(main())
    assert reports == [(1, 0.0, 0.25), (1, 0.25, 0.25)]


# --- what every batch does ---------------------------------------------------------------


def test_real_engine_under_concurrency(tiny_package: tuple[Path, Path]) -> None:
    engine = OnnxEngine.load(tiny_package[1], providers=["cpu"])
    rng = np.random.default_rng(0)
    windows = rng.normal(size=(24, 8, FEATURE_DIM)).astype(np.float32)
    masks = np.ones((24, 8), np.int64)
    masks[::3, :5] = 0
    expected = engine.classify(windows, masks)

    async def main() -> list[np.ndarray]:
        batcher = MicroBatcher(engine.classify, max_batch=16, max_wait_s=0.5, clock=TickingClock())
        async with batcher:
            return await answered(
                asyncio.gather(*(batcher.submit(w, m) for w, m in zip(windows, masks, strict=True)))
            )

    np.testing.assert_allclose(np.stack(asyncio.run(main())), expected, atol=1e-5)


def test_a_failing_batch_reaches_its_callers_and_the_batcher_goes_on() -> None:
    calls = []

    def flaky(features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        calls.append(len(features))
        if len(calls) == 1:
            raise RuntimeError("device lost")
        return echo(features, mask)

    async def main() -> np.ndarray:
        batcher = MicroBatcher(flaky, max_batch=4, max_wait_s=0.5, clock=TickingClock())
        async with batcher:
            with pytest.raises(RuntimeError, match="device lost"):
                await answered(batcher.submit(*window(1)))
            return await answered(batcher.submit(*window(7)))

    assert float(asyncio.run(main())[0]) == 7.0
    assert calls == [1, 1]


def check_window(features: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """A per-item check (runtime's window check on a batch of one)."""
    batch, batch_mask = check_windows(np.asarray(features)[None], np.asarray(mask)[None], 3)
    return batch[0], batch_mask[0]


def test_a_bad_item_fails_only_its_caller() -> None:
    async def main() -> list[object]:
        batcher = MicroBatcher(
            echo, max_batch=4, max_wait_s=0.5, validate=check_window, clock=TickingClock()
        )
        async with batcher:
            bad = np.full((4, 3), np.nan, np.float32), np.ones(4)
            return await answered(
                asyncio.gather(
                    batcher.submit(*window(1)),
                    batcher.submit(*bad),
                    batcher.submit(np.zeros((4, 5), np.float32), np.ones(4)),
                    batcher.submit(*window(3)),
                    return_exceptions=True,
                )
            )

    good, nan, wrong_dim, also_good = asyncio.run(main())
    assert float(good[0]) == 1.0 and float(also_good[0]) == 3.0
    assert isinstance(nan, EngineInputError) and isinstance(wrong_dim, EngineInputError)


def test_windows_of_different_lengths_are_left_padded() -> None:
    features, mask = stack_windows(
        [np.ones((2, 3), np.float32), np.full((4, 3), 2, np.float32)],
        [np.ones(2, np.int64), np.ones(4, np.int64)],
    )
    assert features.shape == (2, 4, 3)
    assert mask.tolist() == [[0, 0, 1, 1], [1, 1, 1, 1]]
    assert features[0, :2].sum() == 0 and features[0, 2:].min() == 1


def test_closing_fails_pending_windows_and_refuses_new_ones() -> None:
    running, release = threading.Event(), threading.Event()

    def blocked(features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        running.set()
        release.wait(HANG_S)  # held until the batcher is closed
        return echo(features, mask)

    async def main() -> tuple[object, object]:
        batcher = MicroBatcher(blocked, max_batch=1, max_wait_s=0, clock=ManualClock())
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(*window(1)))
        waiting = asyncio.ensure_future(batcher.submit(*window(2)))
        assert await asyncio.to_thread(running.wait, HANG_S)  # the first is in flight
        await batcher.close()
        release.set()
        results = await answered(asyncio.gather(first, waiting, return_exceptions=True))
        with pytest.raises(BatcherClosed):
            await batcher.submit(*window(3))
        return results

    first, waiting = asyncio.run(main())
    assert isinstance(waiting, BatcherClosed)
    assert isinstance(first, BatcherClosed)  # in flight when closed: told, not hung
