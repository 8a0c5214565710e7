"""The streaming step path (service/frame_models/streaming.py) over the real StepEngine's
rings and batching, with its graph in numpy: no export, no onnxruntime.

The fake graph's K/V row for a frame is the frame itself, and its logits pick class
(x_t + x_{t-1} + x_{t-2}) % C from the frame and its two ring slots (W = 3, one layer, so
reach = 3 rows), so a label says whether the rings held the right rows.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from runtime.stepping import StepEngine
from service.cache import StreamState
from service.cache.state import empty_state
from service.frame_models.streaming import StreamingStep

DIM, CLASSES = 2, ("a", "b", "c", "d", "e")
RING = (1, 2, 1, 2, DIM)  # [L, 2, kvH, W-1, d]


class NumpyStepEngine(StepEngine):
    def _run_graph(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        self.calls = getattr(self, "calls", 0) + 1
        x = feeds["features"][:, 0]  # [B]
        history = (feeds["ring"][:, 0, 0, 0, :, 0] * feeds["ring_mask"]).sum(1)  # K of slots
        label = np.rint(x + history).astype(int) % len(CLASSES)
        logits = np.where(np.arange(len(CLASSES)) == label[:, None], 20.0, 0.0).astype(np.float32)
        rows = np.broadcast_to(feeds["features"][:, None, None, None, :], (len(x), 1, 2, 1, DIM))
        return logits, rows.copy()


def engine() -> NumpyStepEngine:
    return NumpyStepEngine(RING, DIM, CLASSES, ("numpy",))


def expected(values: list[float]) -> list[str]:
    return [
        CLASSES[round(sum(values[max(0, t - 2) : t + 1])) % len(CLASSES)]
        for t in range(len(values))
    ]


def states(values: list[float], *, key: str = "cam", span: int = 3) -> list[StreamState]:
    out, state = [], empty_state(key, dim=DIM, span=span, dtype=np.dtype("<f4"))
    for value in values:
        state = state.pushed(np.full(DIM, value))
        out.append(state)
    return out


def label(probs: np.ndarray) -> str:
    return CLASSES[int(np.argmax(probs))]


def run(coro_fn: Any, model: StreamingStep) -> Any:
    async def go() -> Any:
        model.start()
        try:
            return await coro_fn()
        finally:
            await model.close()

    return asyncio.run(go())


VALUES = [1.0, 2.0, 0.0, 3.0, 1.0, 4.0, 2.0]


def test_one_step_per_row_equals_the_full_recompute() -> None:
    model = StreamingStep(engine(), max_batch=4, max_wait_s=0, max_streams=8)

    async def go() -> list[str]:
        return [label(await model.scores(s)) for s in states(VALUES)]

    assert run(go, model) == expected(VALUES)
    assert model.engine.calls == len(VALUES)  # type: ignore[attr-defined]
    assert model.span == 3 and model.describe()["step"] == {"window": 3, "replay_rows": 3}


def test_the_same_state_again_is_not_stepped_again() -> None:
    model = StreamingStep(engine(), max_batch=4, max_wait_s=0, max_streams=8)
    (first,) = states([2.0])

    async def go() -> tuple[str, str]:
        return label(await model.scores(first)), label(await model.scores(first))

    assert run(go, model) == ("c", "c") and model.engine.calls == 1  # type: ignore[attr-defined]


def test_a_stream_new_to_this_replica_replays_its_cached_rows() -> None:
    model = StreamingStep(engine(), max_batch=4, max_wait_s=0, max_streams=8)
    resumed = states(VALUES)  # the cache kept the last 3 rows; this replica never saw them

    async def go() -> list[str]:
        return [label(await model.scores(s)) for s in resumed[4:]]

    assert run(go, model) == expected(VALUES)[4:]


def test_rows_that_sampling_repeated_are_stepped_before_the_newest() -> None:
    model = StreamingStep(engine(), max_batch=4, max_wait_s=0, max_streams=8)
    all_states = states(VALUES)

    async def go() -> list[str]:
        first = label(await model.scores(all_states[0]))
        return [first, label(await model.scores(all_states[2]))]  # row 1 came with row 2

    assert run(go, model) == [expected(VALUES)[0], expected(VALUES)[2]]


def test_forgotten_and_evicted_streams_are_rebuilt_exactly() -> None:
    model = StreamingStep(engine(), max_batch=4, max_wait_s=0, max_streams=1)
    cam, door = states(VALUES, key="cam"), states(VALUES[::-1], key="door")

    async def go() -> list[str]:
        got = [label(await model.scores(cam[3]))]
        got.append(label(await model.scores(door[3])))  # evicts cam (max_streams 1)
        assert "cam" not in model and "door" in model
        got.append(label(await model.scores(cam[4])))  # replayed
        model.forget("cam")
        got.append(label(await model.scores(cam[5])))  # replayed again
        return got

    want = expected(VALUES)
    assert run(go, model) == [want[3], expected(VALUES[::-1])[3], want[4], want[5]]


def test_two_streams_step_in_one_batch() -> None:
    model = StreamingStep(engine(), max_batch=2, max_wait_s=5.0, max_streams=8)
    cam, door = states(VALUES, key="cam"), states(VALUES[::-1], key="door")

    async def go() -> list[tuple[str, str]]:
        out = []
        for a, b in zip(cam, door, strict=True):
            pa, pb = await asyncio.gather(model.scores(a), model.scores(b))
            out.append((label(pa), label(pb)))
        return out

    got = run(go, model)
    assert got == list(zip(expected(VALUES), expected(VALUES[::-1]), strict=True))
    assert model.engine.calls == len(VALUES)  # type: ignore[attr-defined]


def test_a_clip_runs_the_same_recurrence() -> None:
    model = StreamingStep(engine(), max_batch=4, max_wait_s=0, max_streams=8)
    rows = np.repeat(np.asarray(VALUES, np.float32)[:, None], DIM, 1)
    assert [label(p) for p in model.clip_scores(rows)] == expected(VALUES)
