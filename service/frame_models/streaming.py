"""A streaming package (step.onnx, or its checkpoint in PyTorch): each stream's K/V rings,
and its steps batched across streams by the micro-batcher.

A stream's rings advance one row at a time. `scores` gets the stream's state (its latest
cached rows and the total it has seen); the rings here remember the total they stand at:
  total - 1  the usual case: step the newest row (batched with other streams' steps)
  total      no new row (a frame that fps sampling carried): the last probabilities again
  otherwise  a stream new to this replica (a resume after a failover, a takeover, a
             restart): rebuild its rings by replaying the cached rows first
Replaying `reach` rows (layers x (W - 1) + 1, the package says) rebuilds the rings
exactly; the cache keeps `replay_rows` rows (GAD_STREAM_REPLAY_ROWS, default `reach`), and
fewer make a resumed stream approximate for its first `reach` frames (docs/streaming.md).
The rings of at most `max_streams` streams are kept (least recently stepped out first).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from runtime.engine import EngineInputError
from runtime.stepping import KVRings, StepEngine
from service.batcher import MicroBatcher, OnBatch
from service.cache import StreamState


@dataclass
class _StreamRings:
    rings: KVRings
    total: int  # rows of the stream the rings stand at
    probs: np.ndarray | None = None  # the last step's probabilities


class StreamingStep:
    def __init__(
        self,
        engine: StepEngine,
        *,
        max_batch: int,
        max_wait_s: float,
        max_streams: int,
        replay_rows: int | None = None,
        on_batch: OnBatch | None = None,
    ) -> None:
        self.engine = engine
        self.replay_rows = max(1, replay_rows or engine.reach)
        self.max_streams = max_streams
        self._streams: OrderedDict[str, _StreamRings] = OrderedDict()
        self._batcher = MicroBatcher(
            self._run,
            max_batch=max_batch,
            max_wait_s=max_wait_s,
            collate=_collate_steps,
            validate=self._check,
            on_batch=on_batch,
        )

    streams = True

    @property
    def span(self) -> int:
        return self.replay_rows

    @property
    def providers(self) -> tuple[str, ...]:
        return self.engine.providers

    def start(self) -> None:
        self._batcher.start()

    async def close(self) -> None:
        await self._batcher.close()
        self._streams.clear()

    def __contains__(self, stream: object) -> bool:
        """Whether this replica holds `stream`'s rings."""
        return stream in self._streams

    def forget(self, stream: str) -> None:
        """Drop a stream's rings (it ended); a later frame of it replays its rows."""
        self._streams.pop(stream, None)

    async def scores(self, state: StreamState) -> np.ndarray:
        """Class probabilities for the newest row of `state` (row total_rows - 1)."""
        stream, rows, total = state.key, state.rows, state.total_rows
        known = self._streams.get(stream)
        if known is not None and known.total == total and known.probs is not None:
            return known.probs
        missing = -1 if known is None else total - 1 - known.total  # rows before the newest
        if known is not None and 0 <= missing < len(rows):
            entry = known
        else:
            history = np.asarray(rows[:-1][-self.replay_rows :], np.float32)
            rings, _ = await asyncio.to_thread(self.engine.replay, history)
            entry, missing = _StreamRings(rings, total - 1), 0
        for row in rows[len(rows) - 1 - missing : -1]:  # rows fps sampling repeated
            await self._batcher.submit(np.asarray(row), entry.rings)
        probs = await self._batcher.submit(np.asarray(rows[-1]), entry.rings)
        entry.total, entry.probs = total, probs
        self._streams[stream] = entry
        self._streams.move_to_end(stream)
        while len(self._streams) > self.max_streams:
            self._streams.popitem(last=False)
        return probs

    def clip_scores(self, rows: np.ndarray) -> np.ndarray:
        """The live recurrence over a whole clip (prefill chunks where the package has them)."""
        return self.engine.probabilities(self.engine.replay(rows)[1])

    def describe(self) -> dict[str, Any]:
        step = {"window": self.engine.window, "replay_rows": self.replay_rows}
        return {"attention": "streaming", "step": step}

    def _check(self, row: np.ndarray, state: Any) -> tuple[Any, ...]:
        row = np.asarray(row)
        if row.shape != (self.engine.feature_dim,):
            raise EngineInputError(
                f"a step takes one {self.engine.feature_dim}-d row, got {list(row.shape)}"
            )
        return row, state

    def _run(self, features: np.ndarray, states: list[KVRings]) -> np.ndarray:
        return self.engine.classify(features, states)


def _collate_steps(items: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """(row [D], rings) per stream → (features [B, D], [rings]); a stream has one step
    pending at most (its session awaits each frame), so no rings appear twice."""
    return np.stack([item[0] for item in items]), [item[1] for item in items]
