"""One stream's action events: the segment rule's state and the events not yet delivered,
both kept with the stream's state in the feature cache (its `meta`), so a stream resumed on
any replica continues the same open segment, with the same ids, and delivers what a dead
replica had not.

Per taken frame the session asks for a `step` (the segmenter advanced over the frame's
rows, the events it makes: nothing changes yet), stores the stream's next state with
`meta(step)` — the segmenter's state and the *outbox*, every event of this stream not yet
settled by every sink plus the new ones — and only after the store succeeds `commit`s the
step, which hands the new events to the bus. So:

  * a crash before the store: the frame is not stored, the client sends it again after the
    resume, the same events are made again (same ids) and published once;
  * a crash after the store: the new replica finds the events in the outbox and publishes
    them again (`replay`, at attach): at least once, with the same ids;
  * an event settled (delivered, or dropped and counted) leaves the outbox with the next
    stored frame; one settled after the last stored frame is published again by a resume.

The outbox holds at most OUTBOX events (a sink down for long): older unsettled ones stay in
the bus's buffers only, and `gad_event_outbox_overflow` counts them.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, replace
from typing import Literal, Protocol

import numpy as np

from runtime.segments import Reason, Segmenter, SegmentRule, Transition
from service.cache import CacheError, FeatureCache, Meta
from service.metrics import Metrics
from service.wire import Event, ModelRef

OUTBOX = 64  # unsettled events kept with a stream's state (~70 bytes each)
KINDS: tuple[Literal["started"], Literal["ended"]] = ("started", "ended")
REASONS: tuple[Reason, ...] = ("", "gap", "next", "end", "expired")  # packed by index


class Settled(Protocol):
    @property
    def settled(self) -> bool: ...


class Publisher(Protocol):
    """What a stream hands its events to (service/events/bus.py `EventBus`)."""

    def publish(self, event: Event) -> Settled: ...


@dataclass(frozen=True)
class StreamInfo:
    """What every event of one stream carries."""

    key: str  # the cache key: "{tenant}/{stream}" or "{stream}"
    stream: str
    epoch: str  # the stream's id in the cache: a stream ended and begun again differs
    fps: float
    classes: tuple[str, ...]
    model: ModelRef

    @property
    def tenant(self) -> str | None:
        return self.key.split("/", 1)[0] if "/" in self.key else None


@dataclass(frozen=True)
class Step:
    """A frame's effect on the events, not yet applied."""

    segmenter: Segmenter
    events: list[Event]


class StreamEvents:
    """A stream's segmenter and outbox (module doc)."""

    def __init__(
        self,
        info: StreamInfo,
        rule: SegmentRule,
        *,
        background_index: int | None,
        meta: Meta,
        rows: int,
        publisher: Publisher | None,
        metrics: Metrics,
    ) -> None:
        self.info = info
        self.publisher = publisher
        self.metrics = metrics
        saved = meta.get("segments")
        segmenter = None
        if isinstance(saved, str):
            segmenter = Segmenter.load(saved, rule, background_index=background_index)
        if segmenter is None or segmenter.frame != rows:  # none yet (or from before events)
            segmenter = Segmenter(rule, background_index=background_index, frame=rows)
        self.segmenter = segmenter
        outbox = json.loads(str(meta.get("outbox", "[]")))
        self.pending: list[tuple[Event, Settled | None]] = [
            (self._unpack(packed), None) for packed in outbox
        ]

    def retarget(self, classes: tuple[str, ...], model: ModelRef) -> None:
        """The stream moved to another version of its model (one that keeps the old classes
        in order, so the segmenter's labels keep their meaning): later events name it."""
        self.info = replace(self.info, classes=tuple(classes), model=model)

    def replay(self) -> int:
        """Publish the outbox again (a resume: its events may not have reached every sink)."""
        if self.publisher is None:
            return 0
        self.pending = [(event, self.publisher.publish(event)) for event, _ in self.pending]
        return len(self.pending)

    def step(self, probs: np.ndarray, frames: int = 1) -> Step:
        """The segmenter after `frames` rows with these probabilities, and its events."""
        segmenter = self.segmenter.copy()
        transitions = segmenter.push(probs, frames)
        return Step(segmenter, [self._event(t, time.time()) for t in transitions])

    def meta(self, step: Step) -> dict[str, str]:
        """The stream-state values for after `step`: the segmenter and the outbox."""
        self.pending = [(e, r) for e, r in self.pending if r is None or not r.settled]
        outbox = [event for event, _ in self.pending] + step.events
        if len(outbox) > OUTBOX:
            over = len(outbox) - OUTBOX
            self.metrics.event_outbox_overflow.inc(over)
            outbox = outbox[over:]
            self.pending = self.pending[over:] if over <= len(self.pending) else []
        packed = [self._pack(event) for event in outbox]
        return {
            "segments": step.segmenter.dump(),
            "outbox": json.dumps(packed, separators=(",", ":")),
        }

    def commit(self, step: Step) -> None:
        """The step's state is stored: take it, and publish its events."""
        self.segmenter = step.segmenter
        self._publish(step.events)

    @property
    def open(self) -> bool:
        """A segment is open: its `ended` is still to come."""
        return self.segmenter.open is not None

    async def expire_unless_taken(self, cache: FeatureCache, owner: str, wait_s: float) -> bool:
        """Its connection (`owner`, the cache's owner id) left without `end`: unless another
        connection holds the stream now (it was taken over, or ended) or takes it up within
        `wait_s` (its TTL: then its state is still there, same epoch), the open action ends
        as `expired`. True then. A stream taken up is that connection's to end."""
        if not self.open:
            return False
        try:
            state = await cache.peek(self.info.key)
            if state is None or state.owner != owner:
                return False  # ended, or taken over before this connection closed
            await asyncio.sleep(wait_s)
            state = await cache.peek(self.info.key)
        except CacheError:  # unknown: a later resume may still continue the segment
            return False
        if state is not None and state.epoch == self.info.epoch:
            return False
        return bool(self.finish("expired"))

    def finish(self, reason: Reason = "end") -> list[Event]:
        """The stream ended (`expired`: it was never resumed and its state is gone): the
        open segment ends (published, not stored: the stream's state is dropped)."""
        events = [self._event(t, time.time()) for t in self.segmenter.finish(reason)]
        self._publish(events)
        return events

    def _publish(self, events: list[Event]) -> None:
        if self.publisher is None:
            return
        for event in events:
            self.pending.append((event, self.publisher.publish(event)))

    def _event(self, transition: Transition, at: float) -> Event:
        seg = transition.segment
        packed = [
            KINDS.index(transition.kind),
            seg.label,
            seg.start,
            seg.end,
            round(seg.peak, 6),
            round(seg.mean, 6),
            REASONS.index(transition.reason),
            round(at, 3),
        ]
        return self._unpack(packed)

    @staticmethod
    def _pack(event: Event) -> list[float | int]:
        reason = REASONS.index(event.get("reason", ""))
        return [
            KINDS.index(event["event"]),
            event["index"],
            event["start_row"],
            event["end_row"],
            event["peak"],
            event["mean"],
            reason,
            event["at"],
        ]

    def _unpack(self, packed: list[float | int]) -> Event:
        kind, index, start, end, peak, mean, reason, at = packed
        info = self.info
        label = int(index)
        start_row, end_row = int(start), int(end)
        segment = f"{info.key}:{info.epoch}:{start_row}"
        name = KINDS[int(kind)]
        event: Event = {
            "type": "event",
            "event": name,
            "id": f"{segment}:{name}",
            "segment": segment,
            "stream": info.stream,
            "tenant": info.tenant,
            "label": info.classes[label],
            "index": label,
            "start": round(start_row / info.fps, 6),
            "end": round(end_row / info.fps, 6),
            "start_row": start_row,
            "end_row": end_row,
            "frames": end_row - start_row,
            "peak": float(peak),
            "mean": float(mean),
            "model": info.model,
            "at": float(at),
        }
        why = REASONS[int(reason)]
        if why:
            event["reason"] = why
        return event
