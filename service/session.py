"""One camera stream: frames in, one label per frame out. Transport-free; the WebSocket
route (service/api/ws.py) feeds it messages and sends what it returns.

Per frame, in order:
  1. seq — the client's, or the next one; a seq at or below one already processed is
     refused (a replay), the stream goes on.
  2. fps sampling by timestamp (runtime/video.py's FpsSampler, the rule files use): a frame
     in an already-filled slot is answered with the latest label, flagged `carried`.
  3. a taken frame becomes a feature row: decoded and encoded (images; a pose encoder
     starts from the ROI the stream's previous frame left, `self.track`), or taken as is
     (feature messages); slots the input skipped repeat the previous row, as for files.
  4. the row is appended to the feature cache (Redis or in-process) with the sampler's
     state, so a reconnect — to any replica — resumes exactly here;
  5. the window for the newest row is built by runtime/windowing.py (the one window
     function) and scored through the micro-batcher with every other stream's windows.
A bad frame gets an error message and changes nothing: the sampler is rolled back.

The session holds only what it is given: the model side as a `StreamModel` (the service's
Runtime is one), the feature cache, the metrics, and its `StreamOptions`. Refusals are
the domain errors of service/errors.py; the route maps them to messages and close codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from runtime.encoders import FramePreprocess
from runtime.manifest import ModelPackage
from runtime.pose.roi import Roi
from runtime.preprocess import FrameError as PreprocessError
from runtime.video import FpsSampler
from service.cache import (
    CacheConflict,
    CacheError,
    CacheUnavailable,
    FeatureCache,
    Meta,
    StreamState,
)
from service.cache.state import round_row, storage_dtype
from service.errors import BadTimestamp, SeqReplay, StreamRefused, error_code, error_message
from service.frames import FrameError, decode_image
from service.metrics import Metrics
from service.settings import Settings

log = logging.getLogger(__name__)


class StreamModel(Protocol):
    """What a stream asks of the loaded model (service.runtime.Runtime is one): the
    package's facts, the frame encoder's preprocessing (None: feature rows only), and the
    two calls batched across streams."""

    @property
    def package(self) -> ModelPackage: ...

    @property
    def preprocess(self) -> FramePreprocess | None: ...

    def describe(self) -> dict[str, Any]: ...

    async def encode(
        self, pixels: np.ndarray, track: Roi | None = None
    ) -> tuple[np.ndarray, Roi | None]:
        """A frame's row, and the stream's encoder state for its next frame (a pose
        encoder's ROI; None: none kept, or detect afresh)."""
        ...

    async def scores(
        self, rows: np.ndarray, t: int, *, stream: str | None = None, total: int | None = None
    ) -> np.ndarray:
        """Probabilities for rows[t]; `stream` and its `total` rows let a streaming
        package step that stream's K/V rings (service/stepping.py)."""
        ...

    def forget(self, stream: str) -> None:
        """The stream ended: drop what the model keeps for it (a streaming package's rings)."""
        ...


@dataclass
class Frame:
    seq: int | None
    ts: float | None  # capture time in seconds (client clock); None: arrival time
    image: bytes | None = None
    features: np.ndarray | None = None
    arrived: float = 0.0  # time.monotonic() at arrival


# How a stream's frames reach the model when they arrive faster than it labels them:
# "live" drops the oldest waiting frame (a late label is worthless to a camera), "lossless"
# stops reading the socket until there is room (TCP slows the sender; every frame labelled).
Delivery = Literal["live", "lossless"]
DELIVERIES: tuple[Delivery, ...] = ("live", "lossless")


@dataclass(frozen=True)
class StreamOptions:
    """How one stream runs: the service's frame limits and cache dtype (settings) and the
    client's choices (query parameters)."""

    max_frame_bytes: int
    max_frame_pixels: int
    cache_dtype: str = "float32"  # what the cache stores rows as
    carry_over: bool = True  # answer frames sampling skipped with the latest label
    top_k: int = 3
    delivery: Delivery = "live"

    @classmethod
    def from_settings(
        cls, settings: Settings, *, carry_over: bool, top_k: int, delivery: Delivery = "live"
    ) -> StreamOptions:
        return cls(
            max_frame_bytes=settings.max_frame_bytes,
            max_frame_pixels=settings.max_frame_pixels,
            cache_dtype=settings.cache_dtype,
            carry_over=carry_over,
            top_k=top_k,
            delivery=delivery,
        )


class StreamSession:
    def __init__(
        self,
        stream_id: str,
        state: StreamState,
        options: StreamOptions,
        *,
        model: StreamModel,
        cache: FeatureCache,
        metrics: Metrics,
    ) -> None:
        self.model = model
        self.package = model.package
        self.cache = cache
        self.metrics = metrics
        self.stream_id = stream_id
        self.state = state
        self.options = options
        meta = state.meta
        fps = self.package.fps
        t0 = meta.get("t0")
        # A camera pause longer than ~2 s re-anchors the clock instead of repeating rows.
        self.sampler = FpsSampler(
            fps, start=None if t0 is None else float(t0), max_repeat=max(1, round(2 * fps))
        )
        # Resuming needs only the clock's origin and the rows taken: a frame older than
        # the last one lands in a filled slot and is carried over.
        self.sampler.rows = state.total_rows
        self.next_seq = int(meta.get("next_seq", 0))
        self.storage = storage_dtype(options.cache_dtype)  # what the cache stores
        self.recent: list[dict[str, Any]] = json.loads(str(meta.get("recent", "[]")))
        self.latest: dict[str, Any] | None = None  # the last label message's fields
        # The encoder's state, the stream's own like its window (DESIGN.md): a pose
        # encoder's ROI from the last frame taken. Kept by this connection only: a stream
        # resumed here or on another replica detects its person again on its first frame.
        self.track: Roi | None = None
        self.processed = 0
        self.carried = 0

    @property
    def resumed(self) -> bool:
        return self.state.total_rows > 0

    @property
    def feature_dim(self) -> int:
        return self.package.feature_dim

    def ready(self) -> dict[str, Any]:
        info = self.model.describe()
        return {
            "type": "ready",
            "stream": self.stream_id,
            "model": {"name": info["name"], "version": info["version"]},
            "classes": info["classes"],
            "background_index": info["background_index"],
            "fps": info["fps"],
            "window": info["window"],
            "accepts": info["accepts"],
            "delivery": self.options.delivery,
            "resumed": self.resumed,
            "rows": self.state.total_rows,
            "next_seq": self.next_seq,
            # A resumed stream keeps its clock: send timestamps after this one (a client
            # whose clock restarted can offset its own by it).
            "last_ts": self.state.meta.get("last_ts"),
            # The labels of the last frames stored: a client that lost its connection
            # before they arrived fills its gaps below next_seq from here.
            "recent": self.recent,
        }

    async def process(self, frame: Frame) -> dict[str, Any] | None:
        """The message that answers `frame` (label, or error for a bad frame)."""
        reply = await self._process(frame)
        if reply is not None and reply["type"] == "error":
            log.debug(
                "frame refused: %s",
                reply["error"],
                extra={"stream": self.stream_id, "seq": reply.get("seq"), "code": reply["code"]},
            )
        return reply

    async def _process(self, frame: Frame) -> dict[str, Any] | None:
        metrics = self.metrics
        seq = self.next_seq if frame.seq is None else frame.seq
        if seq < self.next_seq:
            return self._refuse(
                SeqReplay(
                    f"seq {seq} is at or below one already processed (next is {self.next_seq})"
                ),
                seq=seq,
            )
        ts = time.time() if frame.ts is None else frame.ts
        before = copy.copy(self.sampler), self.next_seq  # a bad frame changes nothing
        try:
            taken = self.sampler.offer(ts)
        except ValueError as exc:
            return self._refuse(BadTimestamp(str(exc)), seq=seq)
        self.next_seq = seq + 1
        if not taken:
            return await self._carried(seq, frame)
        try:
            row, track = await self._row(frame)
            repeats = [self.state.rows[-1]] * self.sampler.repeat if self.state.rows.size else []
            # Score the new window before storing it, and store the row with its label:
            # a replica that dies between the two never leaves a row whose label is lost
            # (a resumed stream's `ready` carries the recent labels).
            dim = self.state.dim
            rounded = [round_row(r, dim=dim, dtype=self.storage) for r in [*repeats, row]]
            window = self.state
            for pushed in rounded:
                window = window.pushed(pushed, window.meta)
            probs = await self.model.scores(
                window.rows, len(window.rows) - 1, stream=window.key, total=window.total_rows
            )
            message = self._label(seq, probs, frame, carried=False, row=window.total_rows - 1)
            self.recent = [*self.recent, _brief(message)][-RECENT:]
            meta: dict[str, Any] = {
                "next_seq": self.next_seq,
                "t0": self.sampler.t0,
                "last_ts": ts,
                "recent": json.dumps(self.recent, separators=(",", ":")),
            }
            started = time.monotonic()
            for pushed in rounded:
                self.state = await self._append(pushed, meta)
            metrics.cache.labels("append").observe(time.monotonic() - started)
            self.track = track
        except FrameError as exc:
            self.sampler, self.next_seq = before
            return self._refuse(exc, seq=seq)
        except CacheConflict as exc:
            metrics.cache_errors.labels("conflict").inc()
            raise StreamRefused("stream taken over by another connection") from exc
        except CacheUnavailable as exc:
            self.sampler, self.next_seq = before
            self.recent = self.recent[:-1]
            metrics.cache_errors.labels("unavailable").inc()
            unavailable = CacheUnavailable(f"feature cache unavailable: {exc}")
            return error_message(unavailable, seq=seq, retry=True)
        except CacheError as exc:  # a row the cache refuses (e.g. float16 overflow)
            self.sampler, self.next_seq = before
            if self.recent and self.recent[-1]["seq"] == seq:
                self.recent = self.recent[:-1]
            return self._refuse(exc, seq=seq)
        self.processed += 1
        metrics.frames_processed.inc()
        self.latest = message
        return message

    def _refuse(self, exc: Exception, *, seq: int) -> dict[str, Any]:
        """The error message refusing frame `seq` (counted by its code); nothing changes."""
        self.metrics.frame_errors.labels(error_code(exc)).inc()
        return error_message(exc, seq=seq)

    async def _append(self, row: np.ndarray, meta: Meta) -> StreamState:
        cache = self.cache
        try:
            return await cache.append(self.state, row, meta)
        except CacheConflict as exc:
            if not exc.gone:
                raise
        # The cache lost the stream (idle TTL passed, or Redis restarted empty) while this
        # connection held it: put this connection's copy back, window and all.
        self.metrics.cache_errors.labels("restored").inc()
        self.state = await cache.restore(self.state)
        return await cache.append(self.state, row, meta)

    async def _row(self, frame: Frame) -> tuple[np.ndarray, Roi | None]:
        """The frame's row and the encoder's state after it (None after a feature row)."""
        if frame.features is not None:
            if frame.features.shape != (self.feature_dim,):
                raise FrameError(
                    f"features must have {self.feature_dim} values, got {frame.features.size}"
                )
            return frame.features, None
        preprocess = self.model.preprocess
        if preprocess is None:
            raise FrameError(
                "this model has no frame encoder: send feature messages "
                '({"type": "features", "data": base64 float32})'
            )
        options = self.options

        def prepare() -> np.ndarray:
            rgb = decode_image(
                frame.image or b"",
                max_bytes=options.max_frame_bytes,
                max_pixels=options.max_frame_pixels,
            )
            try:
                pixels: np.ndarray = preprocess.apply(rgb)[0]
            except PreprocessError as exc:  # e.g. an absurd aspect ratio
                raise FrameError(str(exc)) from exc
            return pixels

        pixels = await asyncio.to_thread(prepare)  # decode + resize off the event loop
        started = time.monotonic()
        encoded = await self.model.encode(pixels, self.track)
        self.metrics.encoder.observe(time.monotonic() - started)
        return encoded

    async def _carried(self, seq: int, frame: Frame) -> dict[str, Any] | None:
        self.carried += 1
        self.metrics.frames_carried.inc()
        if not self.options.carry_over:
            return None
        if self.latest is None:
            if not self.state.rows.size:
                return {"type": "label", "seq": seq, "carried": True, "label": None}
            # Resumed on this connection: the latest label is the newest row's.
            rows, total = self.state.rows, self.state.total_rows
            probs = await self.model.scores(rows, len(rows) - 1, stream=self.state.key, total=total)
            self.latest = self._label(seq, probs, frame, carried=False)
        return self.latest | {
            "seq": seq,
            "carried": True,
            "latency_ms": _ms_since(frame.arrived),
        }

    def _label(
        self, seq: int, probs: np.ndarray, frame: Frame, *, carried: bool, row: int | None = None
    ) -> dict[str, Any]:
        classes = self.package.classes
        order = np.argsort(-probs)[: self.options.top_k]
        index = int(order[0])
        row = self.state.total_rows - 1 if row is None else row
        return {
            "type": "label",
            "seq": seq,
            "row": row,
            "t": round(row / self.package.fps, 6),
            "label": classes[index],
            "index": index,
            "score": round(float(probs[index]), 6),
            "top": [[classes[int(i)], round(float(probs[i]), 6)] for i in order],
            "carried": carried,
            "latency_ms": _ms_since(frame.arrived),
        }

    async def end(self) -> dict[str, Any]:
        """The client ended the stream: its cached window (and rings) are freed."""
        self.model.forget(self.state.key)
        with contextlib.suppress(CacheError):  # the TTL frees it anyway
            await self.cache.drop(self.state.key)
        return {
            "type": "end",
            "stream": self.stream_id,
            "rows": self.state.total_rows,
            "processed": self.processed,
            "carried": self.carried,
        }


RECENT = 8  # labels kept with a stream's state (a resumed client's gap is at most its window)


def _brief(message: dict[str, Any]) -> dict[str, Any]:
    keys = ("seq", "row", "t", "label", "index", "score")
    return {key: message[key] for key in keys}


def _ms_since(arrived: float) -> float:
    return round((time.monotonic() - arrived) * 1e3, 3) if arrived else 0.0
