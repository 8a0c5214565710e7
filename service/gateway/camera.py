"""One camera: its source read in a thread of its own, its frames streamed to the service,
each side reconnected on its own, forever.

    reader thread   open the source → decode → sample at the model's fps (FpsSampler, on
                    the stream's own timestamps) → JPEG → hand the frame to the event loop;
                    on an error, the end of the stream or a stall (read timeout): close,
                    back off, reopen.
    stream task     join WS /v1/streams/STREAM (live delivery) → send the latest frame when
                    fewer than `in_flight` frames await their label → read the answers;
                    on a close (1012 restarting, 1001, 1006, 1011 ...), a refused
                    connection or no answer for `answer_timeout_s`: back off, rejoin with
                    the same stream id (the service resumes its window within its TTL).

Live delivery at the gateway: one frame waits between the two sides, the newest. A frame
that a newer one replaces before it could be sent is dropped (`late`, or `disconnected`
while there is no stream), so nothing queues: the latency a camera sees is at most
`in_flight` frames of the service's time. Decoding and JPEG encoding run in the camera's
thread (FFmpeg and OpenCV release the GIL): a camera that hangs holds only its thread,
and the event loop only moves bytes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import GADError
from runtime.sources import SourceError, SourceStalled, Timeline, open_source
from runtime.video import FpsSampler
from service.client import FrameStream, encode_frame, open_stream
from service.gateway.backoff import Backoff
from service.gateway.config import Camera
from service.gateway.metrics import GatewayMetrics
from service.wire import Ready, ServerMessage

log = logging.getLogger("gad.gateway")

# Close codes that say "not like this" rather than "not now": policy or auth (1008), a
# frame too big for the server (1009). Rejoined after the whole backoff cap.
REFUSED_CODES = frozenset({1008, 1009})
# A frame older than this when its turn to be sent comes is dropped as late.
MAX_FRAME_AGE_S = 2.0
# A camera that stops (the gateway shutting down, `gad stream --duration`) sends nothing more
# and waits this long for the answers to the frames it already sent, so none goes unanswered.
STOP_DRAIN_S = 2.0
# A sampled-frame timestamp jump of more slots than this re-anchors the sampler's clock.
MAX_REPEAT_SLOTS = 8


@dataclass
class Outgoing:
    ts: float  # capture time on the camera's clock
    pts: float | None  # the stream's own presentation time (None: it has none)
    image: str  # base64 JPEG
    captured: float  # monotonic time it was decoded


@dataclass
class CameraStatus:
    camera: str = "opening"  # opening | reading | backoff | stopped
    link: str = "connecting"  # connecting | joined | backoff | refused | stopped
    last_frame: float | None = None  # monotonic time of the last decoded frame
    read: int = 0
    sampled: int = 0
    sent: int = 0
    labels: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    reconnects: Counter[str] = field(default_factory=Counter)  # side → count
    readies: list[Ready] = field(default_factory=list)  # every `ready`, oldest first
    last_error: dict[str, str] = field(default_factory=dict)  # camera | service → reason

    def as_dict(self) -> dict[str, Any]:
        age = None if self.last_frame is None else round(time.monotonic() - self.last_frame, 3)
        return {
            "camera": self.camera,
            "service": self.link,
            "last_frame_age_s": age,
            "frames": {"read": self.read, "sampled": self.sampled, "sent": self.sent},
            "labels": self.labels,
            "dropped": dict(self.dropped),
            "reconnects": dict(self.reconnects),
            "resumed": bool(self.readies and self.readies[-1]["resumed"]),
            "errors": dict(self.last_error),
        }


class CameraRunner:
    """Runs one camera until `stop()`: `await runner.run()`."""

    def __init__(
        self,
        camera: Camera,
        *,
        metrics: GatewayMetrics | None = None,
        on_message: Callable[[ServerMessage], None] | None = None,
        realtime_files: bool = True,
    ) -> None:
        self.camera = camera
        self.fields = camera.fields
        self.metrics = metrics or GatewayMetrics()
        self.on_message = on_message
        # called with (seq, frame) for every frame sent (what a label's seq stands for)
        self.on_sent: Callable[[int, Outgoing], None] | None = None
        self.realtime_files = realtime_files
        self.status = CameraStatus()
        self.fps: float | None = camera.fields.fps  # else the model's, from `ready`
        self.seq = 0
        b = camera.fields.backoff
        self.source_backoff = Backoff(b.initial_s, b.max_s, stable_s=b.stable_s)
        self.link_backoff = Backoff(b.initial_s, b.max_s, stable_s=b.stable_s)
        self._stopping = threading.Event()
        self._stop_async: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next: Outgoing | None = None
        self._has_next: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        name = camera.id
        self._m_read = self.metrics.frames_read.labels(name)
        self._m_sampled = self.metrics.frames_sampled.labels(name)
        self._m_sent = self.metrics.frames_sent.labels(name)
        self._m_labels = self.metrics.labels.labels(name)
        self._m_rtt = self.metrics.round_trip.labels(name)
        self.metrics.track_age(name, self._frame_age)
        self._set("camera", "opening")
        self._set("link", "connecting")

    # --- state ---------------------------------------------------------------------------

    def _frame_age(self) -> float:
        last = self.status.last_frame
        return -1.0 if last is None else time.monotonic() - last

    def _set(self, side: str, state: str, reason: str | None = None, **extra: Any) -> None:
        previous = getattr(self.status, side)
        setattr(self.status, side, state)
        (self.metrics.camera_state if side == "camera" else self.metrics.link_state).labels(
            self.camera.id
        ).state(state)
        name = "camera" if side == "camera" else "service"
        if reason:
            self.status.last_error[name] = reason
        if previous != state or reason:
            fields = {"camera": self.camera.id, "side": name}
            fields |= {"state": state, "previous": previous}
            if reason:
                fields["reason"] = reason
            log.info(
                "%s %s: %s",
                fields["side"],
                self.camera.id,
                state,
                extra={"gateway": fields | extra},
            )

    def _drop(self, reason: str, count: int = 1) -> None:
        if count:
            self.status.dropped[reason] += count
            self.metrics.frames_dropped.labels(self.camera.id, reason).inc(count)

    def _reconnected(self, side: str) -> None:
        self.status.reconnects[side] += 1
        self.metrics.reconnects.labels(self.camera.id, side).inc()

    # --- run -------------------------------------------------------------------------------

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_async = asyncio.Event()
        self._has_next = asyncio.Event()
        self._thread = threading.Thread(
            target=self._read_forever, name=f"camera-{self.camera.id}", daemon=True
        )
        self._thread.start()
        try:
            await self._stream_forever()
        finally:
            self._stopping.set()
            self._set("camera", "stopped")
            self._set("link", "stopped")

    def stop(self) -> None:
        """Stop both sides (thread-safe). The reader thread ends within its read timeout."""
        self._stopping.set()
        loop, event = self._loop, self._stop_async
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    # --- the source side (its own thread) ----------------------------------------------------

    def _read_forever(self) -> None:
        timeline = Timeline()
        sampler: FpsSampler | None = None
        f = self.fields
        opened_before = False
        while not self._stopping.is_set():
            self._set("camera", "opening")
            reason = "the stream ended"
            try:
                with open_source(
                    self.camera.source,
                    open_timeout=f.open_timeout_s,
                    read_timeout=f.read_timeout_s,
                    options=f.options,
                    realtime=self.realtime_files,
                    timeline=timeline,
                ) as source:
                    if opened_before:
                        self._reconnected("camera")
                    opened_before = True
                    self.source_backoff.connected()
                    self._set("camera", "reading", opened_s=round(source.opened_s, 3))
                    for frame in source:
                        if self._stopping.is_set():
                            return
                        self.status.read += 1
                        self.status.last_frame = time.monotonic()
                        self._m_read.inc()
                        fps = self.fps
                        if fps is None:
                            continue  # the model's fps comes with the first `ready`
                        if sampler is None or sampler.fps != fps:
                            sampler = FpsSampler(fps, max_repeat=MAX_REPEAT_SLOTS)
                        if not sampler.offer(frame.ts):
                            continue
                        rgb = frame.rgb(max_side=f.max_side)
                        jpeg = encode_frame(rgb, "jpeg", f.jpeg_quality)
                        image = base64.b64encode(jpeg).decode()
                        self._hand_over(Outgoing(frame.ts, frame.pts, image, time.monotonic()))
            except SourceStalled as exc:
                reason = f"stalled: {exc}"
            except SourceError as exc:
                reason = str(exc)
            except Exception as exc:  # a bug or a library surprise: log it, keep the camera
                log.exception("camera %s: reader failed", self.camera.id)
                reason = f"{type(exc).__name__}: {exc}"
            if self._stopping.is_set():
                return
            delay = self.source_backoff.failed()
            self._set("camera", "backoff", reason, retry_in_s=round(delay, 2))
            self._stopping.wait(delay)

    def _hand_over(self, frame: Outgoing) -> None:
        self.status.sampled += 1
        self._m_sampled.inc()
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._put, frame)
        except RuntimeError:  # the loop is closed: the gateway is stopping
            self._stopping.set()

    def _put(self, frame: Outgoing) -> None:
        """In the loop: the newest frame replaces one still waiting."""
        if self._next is not None:
            self._drop("late" if self.status.link == "joined" else "disconnected")
        self._next = frame
        assert self._has_next is not None
        self._has_next.set()

    # --- the service side (the event loop) --------------------------------------------------

    async def _stream_forever(self) -> None:
        assert self._stop_async is not None
        f = self.fields
        joined_before = False
        while not self._stop_async.is_set():
            self._set("link", "connecting")
            refused, reason = False, "closed"
            stream: FrameStream | None = None
            try:
                async with open_stream(
                    self.camera.url,
                    token=self.camera.token,
                    delivery="live",
                    open_timeout=f.open_timeout_s,
                    ping_interval=5.0,
                    ping_timeout=10.0,
                ) as stream:
                    ready = stream.ready
                    if joined_before:
                        self._reconnected("service")
                    joined_before = True
                    self.status.readies.append(ready)
                    if f.fps is None:
                        self.fps = float(ready["fps"])
                    self.seq = max(self.seq, int(ready["next_seq"]))
                    self.link_backoff.connected()
                    self._set(
                        "link", "joined", resumed=ready["resumed"], rows=ready["rows"],
                        next_seq=ready["next_seq"],
                    )  # fmt: skip
                    self._drop_stale()
                    reason = await self._exchange(stream)
            except Exception as exc:
                refused, reason = _classify(exc)
            finally:
                if stream is not None:
                    self._drop("in_flight", len(stream.pending))
            if self._stop_async.is_set():
                return
            if refused:
                delay = self.link_backoff.refused()
                self._set("link", "refused", reason, retry_in_s=round(delay, 2))
            else:
                delay = self.link_backoff.failed()
                self._set("link", "backoff", reason, retry_in_s=round(delay, 2))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_async.wait(), delay)

    def _drop_stale(self) -> None:
        if self._next is not None and time.monotonic() - self._next.captured > MAX_FRAME_AGE_S:
            self._next = None
            self._drop("disconnected")

    async def _exchange(self, stream: FrameStream) -> str:
        """Send and receive on one joined stream until it closes; why it closed."""
        assert self._stop_async is not None and self._has_next is not None
        window = asyncio.Semaphore(self.fields.in_flight)
        has_next, stop = self._has_next, self._stop_async

        async def send() -> str:
            while True:
                await window.acquire()
                await has_next.wait()
                if stop.is_set():  # stopping: wait to be cancelled, send nothing more
                    await asyncio.Future()
                frame, self._next = self._next, None
                has_next.clear()
                if frame is None:
                    window.release()
                    continue
                if time.monotonic() - frame.captured > MAX_FRAME_AGE_S:
                    self._drop("late")
                    window.release()
                    continue
                await stream.send(self.seq, frame.ts, frame.image)
                if self.on_sent is not None:
                    self.on_sent(self.seq, frame)
                self.seq += 1
                self.status.sent += 1
                self._m_sent.inc()

        async def receive() -> str:
            async for message, round_trip_ms in stream.answers():
                kind = message["type"]
                if round_trip_ms is not None:
                    window.release()
                    self._m_rtt.observe(round_trip_ms / 1e3)
                if kind == "label":
                    self.status.labels += 1
                    self._m_labels.inc()
                elif kind == "dropped":
                    self._drop("server")
                elif kind == "error":
                    self._drop("error")
                if self.on_message is not None:
                    self.on_message(message)
                if kind == "end":
                    return "the service ended the stream"
            code = stream.ws.close_code
            return f"closed {code} {stream.ws.close_reason or ''}".strip()

        async def watchdog() -> str:
            while True:
                await asyncio.sleep(1.0)
                if stream.pending:
                    oldest = min(stream.pending.values())
                    if time.monotonic() - oldest > self.fields.answer_timeout_s:
                        return f"no answer for {self.fields.answer_timeout_s:g} s"

        async def stopped() -> str:
            await stop.wait()  # send() sends nothing more; the frames in flight get answers
            deadline = time.monotonic() + STOP_DRAIN_S
            while stream.pending and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            return "stopping"

        tasks = [asyncio.create_task(c()) for c in (send, receive, watchdog, stopped)]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            exc = task.exception()
            if exc is not None:
                raise exc
            return task.result()
        return "closed"


def _classify(exc: BaseException) -> tuple[bool, str]:
    """(refused on purpose?, why) for an exception that ended a stream attempt."""
    from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

    if isinstance(exc, ConnectionClosed):
        code = exc.rcvd.code if exc.rcvd is not None else 1006
        why = exc.rcvd.reason if exc.rcvd is not None else "no close frame"
        return code in REFUSED_CODES, f"closed {code} {why}".strip()
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return status in (401, 403, 404), f"refused: HTTP {status}"
    if isinstance(exc, InvalidURI):
        return True, f"bad service URL: {exc}"
    if isinstance(exc, TimeoutError):
        return False, "timed out joining the stream"
    if isinstance(exc, OSError):
        return False, f"unreachable: {exc.strerror or exc}"
    if isinstance(exc, GADError):
        return False, str(exc)
    log.exception("stream of camera failed", exc_info=exc)
    return False, f"{type(exc).__name__}: {exc}"
