"""A window head (head.onnx, or its checkpoint in PyTorch): every frame's window is built
from the stream's cached rows by runtime/windowing.py (the one window builder, training's
too) and scored by the micro-batcher together with every other stream's windows."""

from __future__ import annotations

from typing import Any

import numpy as np

from runtime.engine import Engine
from runtime.windowing import WindowSpec, build_window, build_windows
from service.batcher import MicroBatcher, OnBatch
from service.cache import StreamState

CLIP_BATCH = 32  # windows per engine call for a whole clip


class WindowHead:
    def __init__(
        self,
        engine: Engine,
        window: WindowSpec,
        *,
        max_batch: int,
        max_wait_s: float,
        on_batch: OnBatch | None = None,
    ) -> None:
        self.engine = engine
        self.window = window
        # Windows are built here from rows the cache checked: the engine checks the batch.
        self._batcher = MicroBatcher(
            engine.classify, max_batch=max_batch, max_wait_s=max_wait_s, on_batch=on_batch
        )

    streams = True

    @property
    def span(self) -> int:
        return self.window.span

    @property
    def providers(self) -> tuple[str, ...]:
        return self.engine.providers

    def start(self) -> None:
        self._batcher.start()

    async def close(self) -> None:
        await self._batcher.close()

    async def scores(self, state: StreamState) -> np.ndarray:
        window, mask = build_window(state.rows, len(state.rows) - 1, self.window)
        return await self._batcher.submit(window, mask)

    def clip_scores(self, rows: np.ndarray) -> np.ndarray:
        probs = []
        for start in range(0, len(rows), CLIP_BATCH):
            frames = np.arange(start, min(start + CLIP_BATCH, len(rows)))
            windows, mask = build_windows(rows, frames, self.window)
            probs.append(self.engine.classify(windows, mask))
        return np.concatenate(probs)

    def forget(self, stream: str) -> None:
        """A window model keeps nothing per stream (the cache holds its rows)."""

    def describe(self) -> dict[str, Any]:
        return {"attention": "window", "step": None}
