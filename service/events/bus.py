"""The event bus: each action event (service/wire.py `Event`) to every sink, never blocking
the frame path.

    bus = EventBus(open_sinks(settings), metrics, buffer=1000, timeout_s=5, retry_max_s=10)
    bus.start()                       # one worker task per sink
    receipt = bus.publish(event)      # returns at once; receipt.settled later
    async with bus.subscribe(tenant, stream) as events: ...   # GET /v1/events
    await bus.close(drain_s=5)

Per sink a bounded buffer (`buffer` events) and a worker that sends from its head in order,
in batches of up to `sink.batch`. A failed attempt is retried after a capped exponential
backoff with jitter (0.1 s doubling to `retry_max_s`) for as long as the sink is down; the
events wait in the buffer. A full buffer drops its oldest event. A sink that refuses an
event for good (a webhook's 4xx) drops that one. Every drop is counted
(`gad_events_dropped{sink,reason}`) and logged (the first of an outage at once, then at
most one line per 10 s with the count), never silent.

A `Receipt` settles when every sink has delivered or dropped its copy: the session keeps
unsettled events in the stream's state (service/events/stream.py), so a crash loses none.
Subscribers (SSE) are best effort: a bounded queue each, the oldest dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from service.events.sinks import Sink, SinkFailed, SinkRejected
from service.metrics import Metrics
from service.wire import Event

log = logging.getLogger(__name__)

FIRST_RETRY_S = 0.1
DROP_LOG_EVERY_S = 10.0
SUBSCRIBER_BUFFER = 256


class Receipt:
    """One event's delivery across the sinks: settled when none is still trying."""

    __slots__ = ("pending",)

    def __init__(self, sinks: int) -> None:
        self.pending = sinks

    @property
    def settled(self) -> bool:
        return self.pending <= 0

    def done(self) -> None:
        self.pending -= 1


@dataclass
class _Waiting:
    event: Event
    receipt: Receipt
    since: float = field(default_factory=time.monotonic)


class SinkWorker:
    """One sink's buffer and the task that empties it (see the module doc)."""

    def __init__(
        self,
        sink: Sink,
        metrics: Metrics,
        *,
        buffer: int,
        timeout_s: float,
        retry_max_s: float,
    ) -> None:
        self.sink = sink
        self.metrics = metrics
        self.capacity = buffer
        self.timeout_s = timeout_s
        self.retry_max_s = retry_max_s
        self.waiting: deque[_Waiting] = deque()
        self.sending: list[_Waiting] = []
        self.wake = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        self.down_since: float | None = None
        self.failures = 0
        self.dropped = 0  # since the sink last delivered
        self.last_drop_log = 0.0
        self.task: asyncio.Task[None] | None = None
        metrics.event_sink_up.labels(sink.name).set(1)

    @property
    def backlog(self) -> int:
        return len(self.waiting) + len(self.sending)

    def offer(self, event: Event, receipt: Receipt) -> None:
        self.waiting.append(_Waiting(event, receipt))
        self._trim()
        self.idle.clear()
        self.wake.set()
        self.metrics.event_buffer.labels(self.sink.name).set(self.backlog)

    def _trim(self) -> None:
        while len(self.waiting) > self.capacity:
            self._drop(self.waiting.popleft(), "buffer_full")

    def _drop(self, item: _Waiting, reason: str) -> None:
        item.receipt.done()
        self.dropped += 1
        self.metrics.events_dropped.labels(self.sink.name, reason).inc()
        now = time.monotonic()
        if self.dropped == 1 or now - self.last_drop_log >= DROP_LOG_EVERY_S:
            self.last_drop_log = now
            log.warning(
                "event sink %s dropped event %s (%s): %d dropped since it last delivered",
                self.sink.name,
                item.event["id"],
                reason,
                self.dropped,
            )

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"event-sink-{self.sink.name}")

    async def _run(self) -> None:
        while True:
            if not self.waiting:
                self.idle.set()
                self.wake.clear()
                await self.wake.wait()
                continue
            batch = [self.waiting.popleft() for _ in range(min(self.sink.batch, len(self.waiting)))]
            self.sending = batch
            delivered = 0
            failure: BaseException | None = None
            try:
                await asyncio.wait_for(
                    self.sink.send([item.event for item in batch]), self.timeout_s
                )
                delivered = len(batch)
            except SinkRejected as exc:  # for good: drop that one, keep the rest
                delivered = exc.delivered
                self._settle(batch[:delivered])
                self._drop(batch[delivered], "rejected")
                self._requeue(batch[delivered + 1 :])
                continue
            except SinkFailed as exc:
                delivered, failure = exc.delivered, exc
            except Exception as exc:  # a timeout, or a client library's own error
                failure = exc
            self._settle(batch[:delivered])
            if failure is None:
                continue
            self._requeue(batch[delivered:])
            await self._back_off(failure)

    def _settle(self, items: Sequence[_Waiting]) -> None:
        if not items:
            return
        now = time.monotonic()
        name = self.sink.name
        for item in items:
            item.receipt.done()
            self.metrics.events_published.labels(name).inc()
            self.metrics.event_latency.labels(name).observe(now - item.since)
        if self.down_since is not None:
            log.info(
                "event sink %s delivering again after %.1f s down (%d attempts failed, "
                "%d events dropped meanwhile)",
                name,
                now - self.down_since,
                self.failures,
                self.dropped,
            )
            self.metrics.event_sink_up.labels(name).set(1)
        self.down_since, self.failures, self.dropped = None, 0, 0
        self.sending = []
        self.metrics.event_buffer.labels(name).set(self.backlog)

    def _requeue(self, items: Sequence[_Waiting]) -> None:
        self.sending = []
        self.waiting.extendleft(reversed(items))
        self._trim()
        self.metrics.event_buffer.labels(self.sink.name).set(self.backlog)

    async def _back_off(self, failure: BaseException) -> None:
        name = self.sink.name
        self.failures += 1
        self.metrics.event_sink_errors.labels(name).inc()
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.metrics.event_sink_up.labels(name).set(0)
            log.warning(
                "event sink %s is down (%s); retrying with backoff, %d events waiting",
                name,
                _describe(failure),
                self.backlog,
            )
        delay = min(self.retry_max_s, FIRST_RETRY_S * 2 ** min(self.failures - 1, 30))
        await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def drain(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.idle.wait(), timeout_s)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        left = [*self.sending, *self.waiting]
        self.sending, self.waiting = [], deque()
        for item in left:
            self._drop(item, "shutdown")
        self.metrics.event_buffer.labels(self.sink.name).set(0)
        with contextlib.suppress(Exception):
            await self.sink.close()


class Subscription:
    """One `GET /v1/events` listener: the events of one tenant (and one stream, if asked)."""

    def __init__(self, tenant: str | None, stream: str | None, metrics: Metrics) -> None:
        self.tenant = tenant
        self.stream = stream
        self.metrics = metrics
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(SUBSCRIBER_BUFFER)

    def wants(self, event: Event) -> bool:
        return event["tenant"] == self.tenant and self.stream in (None, event["stream"])

    def offer(self, event: Event | None) -> None:
        if self.queue.full():  # a slow reader loses its oldest, counted
            self.queue.get_nowait()
            self.metrics.events_dropped.labels("sse", "buffer_full").inc()
        self.queue.put_nowait(event)

    async def next(self, timeout_s: float) -> Event | None:
        """The next event; None after `timeout_s` without one. Raises EOFError at close."""
        try:
            event = await asyncio.wait_for(self.queue.get(), timeout_s)
        except TimeoutError:
            return None
        if event is None:
            raise EOFError("event bus closed")
        return event


class EventBus:
    """Every event to every sink's worker and every matching subscriber (module doc)."""

    def __init__(
        self,
        sinks: Sequence[Sink],
        metrics: Metrics,
        *,
        buffer: int = 1000,
        timeout_s: float = 5.0,
        retry_max_s: float = 10.0,
    ) -> None:
        self.metrics = metrics
        self.workers = [
            SinkWorker(s, metrics, buffer=buffer, timeout_s=timeout_s, retry_max_s=retry_max_s)
            for s in sinks
        ]
        self.subscriptions: set[Subscription] = set()
        self.closed = False

    @property
    def sinks(self) -> list[str]:
        return [worker.sink.name for worker in self.workers]

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def publish(self, event: Event) -> Receipt:
        """Hand `event` to every sink's buffer and every matching subscriber; never waits."""
        receipt = Receipt(0 if self.closed else len(self.workers))
        self.metrics.events.labels(event["event"]).inc()
        if self.closed:  # shutting down: the stream's state keeps it (it was stored first)
            self.metrics.events_dropped.labels("all", "shutdown").inc()
            return receipt
        for worker in self.workers:
            worker.offer(event, receipt)
        for subscription in self.subscriptions:
            if subscription.wants(event):
                subscription.offer(event)
        return receipt

    @contextlib.asynccontextmanager
    async def subscribe(
        self, tenant: str | None, stream: str | None = None
    ) -> AsyncIterator[Subscription]:
        subscription = Subscription(tenant, stream, self.metrics)
        if self.closed:
            subscription.offer(None)
        self.subscriptions.add(subscription)
        self.metrics.event_subscribers.inc()
        try:
            yield subscription
        finally:
            self.subscriptions.discard(subscription)
            self.metrics.event_subscribers.dec()

    async def close(self, drain_s: float = 5.0) -> None:
        """Stop taking events, give the sinks up to `drain_s` to deliver what waits, drop
        (and count) the rest; end every subscription."""
        self.closed = True
        for subscription in self.subscriptions:
            subscription.offer(None)
        if self.workers:
            await asyncio.gather(*(w.drain(drain_s) for w in self.workers))
        for worker in self.workers:
            await worker.close()


def _describe(failure: BaseException) -> str:
    return (str(failure) or type(failure).__name__)[:300]
