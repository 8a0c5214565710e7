import asyncio
from pathlib import Path

import numpy as np
import pytest

from runtime.engine import EngineInputError, OnnxEngine
from service.batcher import BatcherClosed, MicroBatcher, stack_windows
from tests.model.helpers import FEATURE_DIM


def echo(features: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Each row's answer is its own last frame's first value and its real frame count."""
    return np.stack([features[:, -1, 0], mask.sum(1).astype(np.float32)], 1)


def window(value: float, time: int = 4) -> tuple[np.ndarray, np.ndarray]:
    return np.full((time, 3), value, np.float32), np.ones(time, np.int64)


def test_concurrent_callers_each_get_their_own_row() -> None:
    async def main() -> tuple[list[np.ndarray], MicroBatcher]:
        async with MicroBatcher(echo, max_batch=8, max_wait_s=0.01) as batcher:
            results = await asyncio.gather(*(batcher.submit(*window(i)) for i in range(50)))
        return results, batcher

    results, batcher = asyncio.run(main())
    assert [float(r[0]) for r in results] == [float(i) for i in range(50)]
    assert batcher.stats.windows == 50 and max(batcher.stats.sizes) == 8
    assert batcher.stats.batches < 50  # batched, not one by one


def test_real_engine_under_concurrency(tiny_package: tuple[Path, Path]) -> None:
    engine = OnnxEngine.load(tiny_package[1], providers=["cpu"])
    rng = np.random.default_rng(0)
    windows = rng.normal(size=(24, 8, FEATURE_DIM)).astype(np.float32)
    masks = np.ones((24, 8), np.int64)
    masks[::3, :5] = 0
    expected = engine.classify(windows, masks)

    async def main() -> list[np.ndarray]:
        async with MicroBatcher(engine.classify, max_batch=16, max_wait_s=0.005) as batcher:
            return await asyncio.gather(
                *(batcher.submit(w, m) for w, m in zip(windows, masks, strict=True))
            )

    np.testing.assert_allclose(np.stack(asyncio.run(main())), expected, atol=1e-5)


def test_max_wait_bounds_how_long_a_lone_window_waits() -> None:
    async def main(max_wait_s: float, gap_s: float) -> list[int]:
        async with MicroBatcher(echo, max_batch=64, max_wait_s=max_wait_s) as batcher:
            first = asyncio.ensure_future(batcher.submit(*window(1)))
            await asyncio.sleep(gap_s)
            second = asyncio.ensure_future(batcher.submit(*window(2)))
            # A lone window never waits for the batch to fill: this returns at all.
            await asyncio.wait_for(asyncio.gather(first, second), timeout=10)
        return batcher.stats.sizes

    assert asyncio.run(main(max_wait_s=0.5, gap_s=0.02)) == [2]  # within the wait: joined
    assert asyncio.run(main(max_wait_s=0.0, gap_s=0.05)) == [1, 1]  # past it: apart


def test_a_failing_batch_reaches_its_callers_and_the_batcher_goes_on() -> None:
    calls = []

    def flaky(features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        calls.append(len(features))
        if len(calls) == 1:
            raise RuntimeError("device lost")
        return echo(features, mask)

    async def main() -> np.ndarray:
        async with MicroBatcher(flaky, max_batch=4, max_wait_s=0.01) as batcher:
            with pytest.raises(RuntimeError, match="device lost"):
                await batcher.submit(*window(1))
            return await batcher.submit(*window(7))

    assert float(asyncio.run(main())[0]) == 7.0


def test_a_bad_window_fails_only_its_caller() -> None:
    async def main() -> list[object]:
        async with MicroBatcher(echo, max_batch=4, max_wait_s=0.05, feature_dim=3) as batcher:
            bad = np.full((4, 3), np.nan, np.float32), np.ones(4)
            return await asyncio.gather(
                batcher.submit(*window(1)),
                batcher.submit(*bad),
                batcher.submit(np.zeros((4, 5), np.float32), np.ones(4)),
                batcher.submit(*window(3)),
                return_exceptions=True,
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
    def slow(features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import time

        time.sleep(0.2)
        return echo(features, mask)

    async def main() -> tuple[object, object]:
        batcher = MicroBatcher(slow, max_batch=1, max_wait_s=0)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(*window(1)))
        waiting = asyncio.ensure_future(batcher.submit(*window(2)))
        await asyncio.sleep(0.05)
        await batcher.close()
        results = await asyncio.gather(first, waiting, return_exceptions=True)
        with pytest.raises(BatcherClosed):
            await batcher.submit(*window(3))
        return results

    first, waiting = asyncio.run(main())
    assert isinstance(waiting, BatcherClosed)
    assert isinstance(first, BatcherClosed)  # in flight when closed: told, not hung
