"""A clip-only package (clip.onnx, no per-frame head): streams are refused, and /classify
answers with the clip's procedure only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from runtime.engine import ClipModel
from service.cache import StreamState
from service.errors import StreamRefused

NO_STREAMS = "this model package answers whole clips only (no per-frame head): POST /classify"


@dataclass
class ClipOnly:
    clip: ClipModel
    streams: bool = False
    span: int = 1

    @property
    def providers(self) -> tuple[str, ...]:
        return self.clip.providers

    def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def scores(self, state: StreamState) -> np.ndarray:
        raise StreamRefused(NO_STREAMS)

    def clip_scores(self, rows: np.ndarray) -> np.ndarray | None:
        return None

    def forget(self, stream: str) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"attention": None, "step": None}
