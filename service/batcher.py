"""The micro-batcher: the pending windows of all streams run as one batch.

Each stream awaits `submit(window, mask)` for its own frame. The batcher takes the first
pending window, gathers more until `max_batch` are waiting or `max_wait_s` has passed
since that first one arrived, runs them as one batch in a worker thread (the event loop
keeps receiving frames meanwhile), and hands each caller its own row. So one stream pays
at most `max_wait_s` of extra latency, and N concurrent streams cost about one forward
pass of batch N instead of N passes of batch 1.

Windows of different lengths are left-padded to the longest in the batch with mask 0,
which the model ignores (docs/design.md, the method: padding takes no position and no
attention).

Time comes from an injected `clock` (time.monotonic by default, as the memory cache's), and
when to stop gathering is `GatherPolicy`, a pure function of the batch size and the
clock's readings: both are tested without waiting on real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runtime.errors import GADError

RunBatch = Callable[..., np.ndarray]  # windows: [B,T,D], [B,T] → [B,C]
Collate = Callable[[list[tuple[Any, ...]]], tuple[Any, ...]]
Validate = Callable[..., tuple[Any, ...]]


class BatcherClosed(GADError):
    """The batcher was shut down before this window ran."""


@dataclass
class BatchStats:
    """What the last batches looked like (the service exports these as metrics)."""

    batches: int = 0
    windows: int = 0
    sizes: list[int] = field(default_factory=list)  # the last 1000 batch sizes

    def record(self, size: int) -> None:
        self.batches += 1
        self.windows += size
        self.sizes.append(size)
        del self.sizes[:-1000]


@dataclass
class _Pending:
    arrays: tuple[Any, ...]
    future: asyncio.Future[np.ndarray]
    arrived: float


OnBatch = Callable[[int, float, float], None]  # (size, oldest wait s, run s)
Clock = Callable[[], float]  # seconds, monotonic


@dataclass(frozen=True)
class GatherPolicy:
    """When a batch stops gathering: at `max_batch` items, or once `max_wait_s` has passed
    since its first item arrived. Windows already queued join whatever the time (taking
    them costs nothing); only the wait for one more is bounded by the deadline."""

    max_batch: int
    max_wait_s: float

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_wait_s < 0:
            raise ValueError(
                f"need max_batch >= 1 and max_wait_s >= 0, got {self.max_batch}, {self.max_wait_s}"
            )

    def full(self, size: int) -> bool:
        return size >= self.max_batch

    def wait_s(self, size: int, first_arrived: float, now: float) -> float | None:
        """With `size` items gathered and none queued: how long to wait for one more, or
        None to run the batch now (it is full, or its deadline has passed)."""
        if self.full(size):
            return None
        remaining = first_arrived + self.max_wait_s - now
        return remaining if remaining > 0 else None


class MicroBatcher:
    def __init__(
        self,
        run: RunBatch,
        *,
        max_batch: int = 16,
        max_wait_s: float = 0.002,
        on_batch: OnBatch | None = None,
        collate: Collate | None = None,
        validate: Validate | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        """Windows by default (`submit(features [T, D], mask [T])`; the engine checks the
        batch it runs, so windows built from checked rows need nothing more); any other
        per-item arrays with `collate` (items → the batch arguments of `run`); `validate`
        (one item's arrays → checked arrays) makes a bad item fail its caller alone.
        `clock` times arrivals, the gathering deadline and `on_batch`'s durations."""
        self.policy = GatherPolicy(max_batch, max_wait_s)
        self._run = run
        self._clock = clock
        self._on_batch = on_batch
        self._collate = collate or _collate_windows
        self._validate = validate if validate is not None else _as_arrays
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None
        # One inference at a time: onnxruntime already spreads one batch over its threads.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gad-infer")
        self.stats = BatchStats()

    async def __aenter__(self) -> MicroBatcher:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        if self._task is None:
            queue: asyncio.Queue[_Pending] = asyncio.Queue()
            self._queue = queue
            self._task = asyncio.get_running_loop().create_task(
                self._loop(queue), name="gad-batcher"
            )

    @property
    def max_batch(self) -> int:
        return self.policy.max_batch

    @property
    def max_wait_s(self) -> float:
        return self.policy.max_wait_s

    @property
    def pending(self) -> int:
        return 0 if self._queue is None else self._queue.qsize()

    async def submit(self, *arrays: Any) -> np.ndarray:
        """One item (a window [T, D] and its mask [T]; other items with `collate`, e.g. a
        stream's row and its K/V rings) → its row of the batch result."""
        if self._task is None or self._task.done() or self._queue is None:
            raise BatcherClosed("the micro-batcher is not running")
        checked = self._validate(*arrays)  # a bad item fails its caller, not the batch
        loop = asyncio.get_running_loop()
        item = _Pending(checked, loop.create_future(), self._clock())
        self._queue.put_nowait(item)
        return await item.future

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while self._queue is not None and not self._queue.empty():
            item = self._queue.get_nowait()
            if not item.future.done():
                item.future.set_exception(BatcherClosed("the service is shutting down"))
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _loop(self, queue: asyncio.Queue[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather(queue)
            live = [item for item in batch if not item.future.cancelled()]
            if not live:
                continue
            started = self._clock()
            try:
                inputs = self._collate([item.arrays for item in live])
                result = await loop.run_in_executor(self._executor, self._run, *inputs)
            except asyncio.CancelledError:
                for item in live:
                    if not item.future.done():
                        item.future.set_exception(BatcherClosed("the service is shutting down"))
                raise
            except Exception as exc:  # the batch fails; every caller in it hears why
                for item in live:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            finished = self._clock()
            self.stats.record(len(live))
            if self._on_batch is not None:
                self._on_batch(len(live), started - live[0].arrived, finished - started)
            for item, row in zip(live, result, strict=True):
                if not item.future.done():
                    item.future.set_result(row)

    async def _gather(self, queue: asyncio.Queue[_Pending]) -> list[_Pending]:
        first = await queue.get()
        batch = [first]
        while not self.policy.full(len(batch)):
            try:
                batch.append(queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            wait_s = self.policy.wait_s(len(batch), first.arrived, self._clock())
            if wait_s is None:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), wait_s))
            except TimeoutError:
                break
        return batch


def _as_arrays(*arrays: Any) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(a) for a in arrays)


def _collate_windows(items: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    return stack_windows([item[0] for item in items], [item[1] for item in items])


def stack_windows(
    features: list[np.ndarray], masks: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """[T_i, D] windows → ([B, T_max, D], [B, T_max]) left-padded with mask 0."""
    width = max(len(f) for f in features)
    dim = features[0].shape[-1]
    out = np.zeros((len(features), width, dim), np.float32)
    out_mask = np.zeros((len(features), width), np.int64)
    for i, (f, m) in enumerate(zip(features, masks, strict=True)):
        if f.ndim != 2 or f.shape[-1] != dim or m.shape != f.shape[:1]:
            raise ValueError(
                f"window {i} is {list(f.shape)} with mask {list(m.shape)}; expected "
                f"[time, {dim}] and [time]"
            )
        out[i, width - len(f) :] = f
        out_mask[i, width - len(m) :] = m
    return out, out_mask
