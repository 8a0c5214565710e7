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
  5. the stream's next state (the row rounded through the cache's dtype) is scored by the
     served model's FrameModel (service/frame_models/), batched with other streams;
  6. the same probabilities advance the stream's segment rule (service/events/stream.py):
     an action `started` or `ended` becomes an event, stored with the row in the stream's
     state and, once stored, handed to the event bus (never waited on).
A bad frame gets an error message and changes nothing: the session's `_Checkpoint` is
taken before a frame and put back when it fails half-way.

The session holds only what it is given: the model side as a `StreamModel` (the service's
ServedModel is one; a unit test's fake is another), the feature cache, the metrics, and its
`StreamOptions`. Its messages are the types of service/wire.py. Refusals are the domain
errors of service/errors.py; the route maps them to messages and close codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast

import numpy as np

from runtime.encoders import FramePreprocess
from runtime.manifest import POSE_KIND, ModelPackage
from runtime.pose.roi import Roi
from runtime.pose.view import SKELETON
from runtime.preprocess import FrameError
from runtime.segments import NowLabel, SegmentRule, now_label
from runtime.video import FpsSampler
from service.cache import (
    CacheConflict,
    CacheError,
    CacheUnavailable,
    FeatureCache,
    Meta,
    StreamState,
)
from service.encoding import Encoded, Prepared, frame_reduction
from service.errors import BadTimestamp, SeqReplay, StreamRefused, error_code, error_message
from service.events.stream import Publisher, StreamEvents, StreamInfo
from service.frames import decode_image
from service.metrics import Metrics
from service.moves import moves_to
from service.settings import Settings
from service.wire import Brief, End, Error, Label, NoLabel, Now, Ready, brief

log = logging.getLogger(__name__)


class StreamModel(Protocol):
    """What a stream asks of the served model (service.served.ServedModel is one): the
    package's facts, the frame encoder's preprocessing (None: feature rows only), and the
    two calls batched across streams."""

    @property
    def package(self) -> ModelPackage: ...

    @property
    def preprocess(self) -> FramePreprocess | None: ...

    @property
    def span(self) -> int:
        """Feature rows a stream's window keeps."""
        ...

    def describe(self) -> dict[str, Any]: ...

    def prepare(self, rgb: np.ndarray) -> Prepared:
        """A decoded camera frame → the encoder's input (blocking; FrameError: unusable)."""
        ...

    async def encode(self, prepared: Prepared, track: Roi | None = None) -> Encoded:
        """A frame's row, the stream's encoder state for its next frame (a pose encoder's
        ROI; None: none kept, or detect afresh) and what the encoder saw."""
        ...

    async def scores(self, state: StreamState) -> np.ndarray:
        """Probabilities for the newest row of `state`."""
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
    """How one stream runs: the service's frame limits (settings) and the client's choices
    (query parameters)."""

    max_frame_bytes: int
    max_frame_pixels: int
    carry_over: bool = True  # answer frames sampling skipped with the latest label
    pose: bool = False  # labels carry what a pose encoder saw (joints, box): `?pose=1`
    top_k: int = 3
    delivery: Delivery = "live"
    segment_rule: SegmentRule = field(default_factory=SegmentRule)  # GAD_EVENT_*: events

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        carry_over: bool,
        top_k: int,
        delivery: Delivery = "live",
        pose: bool = False,
    ) -> StreamOptions:
        return cls(
            max_frame_bytes=settings.max_frame_bytes,
            max_frame_pixels=settings.max_frame_pixels,
            carry_over=carry_over,
            pose=pose,
            top_k=top_k,
            delivery=delivery,
            segment_rule=settings.segment_rule,
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
        events: Publisher | None = None,
        follow: Callable[[], StreamModel] | None = None,
    ) -> None:
        """`events`: where the stream's action events go; None: the model's `events` (the
        ServedModel's bus), if it has one. `follow`: the model version streams should be on
        now (service/versions.py); the stream moves to it at a frame boundary when it reads
        the same rows (`moves_to`), else stays on its own."""
        self.model = model
        self.follow = follow
        self.kept_on: StreamModel | None = None  # a version this stream could not move to
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
        self.recent: list[Brief] = json.loads(str(meta.get("recent", "[]")))
        self.latest: Label | None = None  # the last label message
        # The encoder's state, the stream's own like its window (docs/design.md): a pose
        # encoder's ROI from the last frame taken. Kept by this connection only: a stream
        # resumed here or on another replica detects its person again on its first frame.
        self.track: Roi | None = None
        self.processed = 0
        self.carried = 0
        info = model.describe()
        self.events = StreamEvents(
            StreamInfo(
                state.key,
                stream_id,
                state.epoch,
                fps,
                self.package.classes,
                {"name": info["name"], "version": info["version"]},
            ),
            options.segment_rule,
            background_index=info["background_index"],
            meta=meta,
            rows=state.total_rows,
            publisher=events if events is not None else getattr(model, "events", None),
            metrics=metrics,
        )
        # Events stored with the stream's state but maybe never delivered (the replica that
        # stored them died, or was restarted): published again, with the same ids.
        self.events.replay()

    @property
    def resumed(self) -> bool:
        return self.state.total_rows > 0

    @property
    def feature_dim(self) -> int:
        return self.package.feature_dim

    def ready(self) -> Ready:
        info = self.model.describe()
        ready: Ready = {
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
            "last_ts": _float_or_none(self.state.meta.get("last_ts")),
            # The labels of the last frames stored: a client that lost its connection
            # before they arrived fills its gaps below next_seq from here.
            "recent": self.recent,
        }
        encoder = self.package.encoder
        if encoder is not None and encoder.kind == POSE_KIND:
            ready["skeleton"] = SKELETON
        return ready

    async def process(self, frame: Frame) -> Label | NoLabel | Error | None:
        """The message that answers `frame` (label, or error for a bad frame)."""
        reply = await self._process(frame)
        if reply is not None and reply["type"] == "error":
            log.debug(
                "frame refused: %s",
                reply["error"],
                extra={"stream": self.stream_id, "seq": reply.get("seq"), "code": reply["code"]},
            )
        return reply

    async def _process(self, frame: Frame) -> Label | NoLabel | Error | None:
        self._follow()
        seq = self.next_seq if frame.seq is None else frame.seq
        if seq < self.next_seq:
            return self._refuse(
                SeqReplay(
                    f"seq {seq} is at or below one already processed (next is {self.next_seq})"
                ),
                seq=seq,
            )
        ts = time.time() if frame.ts is None else frame.ts
        checkpoint = _Checkpoint.of(self)  # a frame that fails half-way changes nothing
        try:
            taken = self.sampler.offer(ts)
        except ValueError as exc:
            return self._refuse(BadTimestamp(str(exc)), seq=seq)
        self.next_seq = seq + 1
        if not taken:
            return await self._carried(seq, frame)
        try:
            message = await self._take(seq, ts, frame)
        except CacheConflict as exc:
            self.metrics.cache_errors.labels("conflict").inc()
            raise StreamRefused("stream taken over by another connection") from exc
        except CacheUnavailable as exc:
            checkpoint.restore(self)
            self.metrics.cache_errors.labels("unavailable").inc()
            unavailable = CacheUnavailable(f"feature cache unavailable: {exc}")
            return error_message(unavailable, seq=seq, retry=True)
        except (FrameError, CacheError) as exc:  # CacheError: a row the cache refuses
            checkpoint.restore(self)
            return self._refuse(exc, seq=seq)
        self.processed += 1
        self.metrics.frames_processed.inc()
        self.latest = message
        return message

    async def _take(self, seq: int, ts: float, frame: Frame) -> Label:
        """A frame fps sampling took: its row (and the rows the input skipped, repeated)
        scored and stored. The label is scored before the rows are stored, and stored with
        them: a replica that dies between the two never leaves a row whose label is lost
        (a resumed stream's `ready` carries the recent labels)."""
        row, track, view = await self._row(frame)
        repeats = [self.state.rows[-1]] * self.sampler.repeat if self.state.rows.size else []
        pushed, window = [], self.state
        for each in [*repeats, row]:
            window = window.pushed(each)  # rounded through the cache's dtype, checked
            pushed.append(window)
        probs = await self.model.scores(window)
        message = self._label(seq, probs, frame, carried=False, row=window.total_rows - 1)
        if view is not None:  # a pose encoder: whether it found anyone, and what it saw
            message["person"] = view.person
            if self.options.pose:
                message["pose"] = view.to_wire()
        recent = [*self.recent, brief(message)][-RECENT:]
        # Rows the input skipped hold the newest frame's probabilities (only it is scored).
        events = self.events.step(probs, frames=len(pushed))
        # What to show now: the same segment rule as the events, after this frame.
        message["now"] = self._now(now_label(events.segmenter, probs))
        t0 = self.sampler.t0
        assert t0 is not None  # set by the frame it took
        meta: Meta = {
            "next_seq": self.next_seq,
            "t0": t0,
            "last_ts": ts,
            "recent": json.dumps(recent, separators=(",", ":")),
            **self.events.meta(events),
        }
        started = time.monotonic()
        for following in pushed:
            self.state = await self._store(following.with_meta(meta))
        self.metrics.cache.labels("append").observe(time.monotonic() - started)
        self.recent, self.track = recent, track
        self.events.commit(events)  # stored: now published
        return message

    def _follow(self) -> None:
        """Between frames: move to the version streams should be on, if it reads the same
        rows (the window, events and encoder state carry over; the old version forgets the
        stream), else stay on this one until the stream ends."""
        latest = None if self.follow is None else self.follow()
        if latest is None or latest is self.model or latest is self.kept_on:
            return
        why = moves_to(self.package, latest.package, span=self.state.span, new_span=latest.span)
        if why is not None:
            self.kept_on = latest
            self.metrics.stream_moves.labels("kept").inc()
            log.info(
                "stream stays on model v%s, not v%s: %s",
                self.package.version,
                latest.package.version,
                why,
                extra={"stream": self.stream_id},
            )
            return
        self.model.forget(self.state.key)
        self.model, self.package, self.kept_on = latest, latest.package, None
        info = latest.describe()
        self.events.retarget(
            self.package.classes, {"name": info["name"], "version": info["version"]}
        )
        self.latest = None  # a carried frame gets the new version's label
        self.metrics.stream_moves.labels("moved").inc()

    def _now(self, now: NowLabel) -> Now:
        classes, fps = self.package.classes, self.package.fps
        segment = now.segment
        return {
            "kind": now.kind,
            "label": None if now.label is None else classes[now.label],
            "index": now.label,
            "score": round(now.score, 6),
            "since": None if segment is None else round(segment.start / fps, 6),
        }

    def _refuse(self, exc: Exception, *, seq: int) -> Error:
        """The error message refusing frame `seq` (counted by its code); nothing changes."""
        self.metrics.frame_errors.labels(error_code(exc)).inc()
        return error_message(exc, seq=seq)

    async def _store(self, following: StreamState) -> StreamState:
        cache = self.cache
        try:
            return await cache.store(following)
        except CacheConflict as exc:
            if not exc.gone:
                raise
        # The cache lost the stream (idle TTL passed, or Redis restarted empty) while this
        # connection held it: put this connection's copy back, window and all.
        self.metrics.cache_errors.labels("restored").inc()
        self.state = await cache.restore(self.state)
        return await cache.store(following)

    async def _row(self, frame: Frame) -> Encoded:
        """The frame's row, the encoder's state after it and what it saw (None, None after
        a feature row)."""
        if frame.features is not None:  # checked where it was decoded (service/frames.py)
            return Encoded(frame.features, None, None)
        if self.model.preprocess is None:
            raise FrameError(
                "this model has no frame encoder: send feature messages "
                '({"type": "features", "data": base64 float32})'
            )

        options = self.options
        # A JPEG decoded at reduced size where the encoder needs no more (the pose encoder:
        # by the stream's ROI, service/encoding.py); None: decoded whole.
        reduce = frame_reduction(self.model.preprocess, self.track)

        def prepare() -> Prepared:
            rgb = decode_image(
                frame.image or b"",
                max_bytes=options.max_frame_bytes,
                max_pixels=options.max_frame_pixels,
                reduce=reduce,
            )
            return self.model.prepare(rgb)

        prepared = await asyncio.to_thread(prepare)  # decode + resize off the event loop
        started = time.monotonic()
        encoded = await self.model.encode(prepared, self.track)
        self.metrics.encoder.observe(time.monotonic() - started)
        return encoded

    async def _carried(self, seq: int, frame: Frame) -> Label | NoLabel | None:
        self.carried += 1
        self.metrics.frames_carried.inc()
        if not self.options.carry_over:
            return None
        if self.latest is None:
            if not self.state.rows.size:
                return {"type": "label", "seq": seq, "carried": True, "label": None}
            # Resumed on this connection: the latest label is the newest row's.
            probs = await self.model.scores(self.state)
            self.latest = self._label(seq, probs, frame, carried=False)
        carried: Label = {**self.latest, "seq": seq, "carried": True}
        carried["latency_ms"] = _ms_since(frame.arrived)
        return carried

    def _label(
        self, seq: int, probs: np.ndarray, frame: Frame, *, carried: bool, row: int | None = None
    ) -> Label:
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
            "top": [(classes[int(i)], round(float(probs[i]), 6)) for i in order],
            "carried": carried,
            "latency_ms": _ms_since(frame.arrived),
            "version": self.package.version,
        }

    async def end(self) -> End:
        """The client ended the stream: its open action ends (an event), its cached window
        (and rings) are freed."""
        self.events.finish()
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


@dataclass(frozen=True)
class _Checkpoint:
    """What a frame changes before it is stored: the sampler and the next seq. Taken before
    each frame, put back when the frame fails half-way (the rest changes only on success)."""

    sampler: FpsSampler
    next_seq: int

    @classmethod
    def of(cls, session: StreamSession) -> _Checkpoint:
        return cls(copy.copy(session.sampler), session.next_seq)

    def restore(self, session: StreamSession) -> None:
        session.sampler, session.next_seq = self.sampler, self.next_seq


def _float_or_none(value: object) -> float | None:
    return None if value is None else float(cast(float, value))


def _ms_since(arrived: float) -> float:
    return round((time.monotonic() - arrived) * 1e3, 3) if arrived else 0.0
