"""What labels frames, one object per kind of served model. The service holds one
`FrameModel` and never asks which kind it is; `service/served.py` builds it (the one place
that looks at the package kind):

    window.WindowHead        a window head (head.onnx): each frame's window built from the
                             stream's cached rows, scored in micro-batches across streams
    streaming.StreamingStep  a streaming package (step.onnx): per-stream K/V rings, one
                             step per frame, batched across streams; resumes replay rows
    clip_only.ClipOnly       a clip-only package (clip.onnx alone): no per-frame labels

A fake FrameModel is all a session needs in a unit test (tests/service/test_session.py).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from service.cache import StreamState


class FrameModel(Protocol):
    """Per-frame class probabilities, for a stream's newest row or a whole clip."""

    @property
    def streams(self) -> bool:
        """Whether this model labels the frames of streams (a clip-only one does not)."""
        ...

    @property
    def span(self) -> int:
        """Feature rows a stream's cache keeps: a window's reach, or the rows a streaming
        model replays to rebuild its rings on another replica."""
        ...

    @property
    def providers(self) -> tuple[str, ...]:
        """Where it runs (onnxruntime providers, or torch:DEVICE)."""
        ...

    def start(self) -> None: ...

    async def close(self) -> None: ...

    async def scores(self, state: StreamState) -> np.ndarray:
        """Class probabilities [C] for the newest row of `state` (batched with other
        streams'); called once per new row, or again with the same state."""
        ...

    def clip_scores(self, rows: np.ndarray) -> np.ndarray | None:
        """Class probabilities [T, C] for every row of a clip (blocking: a worker thread
        runs it), exactly as if the rows had been streamed; None: no per-frame labels."""
        ...

    def forget(self, stream: str) -> None:
        """The stream ended: drop what is kept for it."""
        ...

    def describe(self) -> dict[str, Any]:
        """Its part of `/v1/models`: attention, window, step."""
        ...
