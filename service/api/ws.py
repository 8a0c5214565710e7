"""`WS /v1/streams/{stream_id}`: the wire protocol around a StreamSession.

Client → server: binary messages are one encoded image (JPEG/PNG); text messages are JSON
    {"type": "frame", "seq": 7, "ts": 12.25, "image": "<base64 JPEG/PNG>"}
    {"type": "features", "seq": 7, "ts": 12.25, "data": "<base64 float32 × D>"}
    {"type": "end"}
(seq: an integer 0 … 2**63-1; ts: seconds, |ts| <= 1e12; both optional.)
Server → client: {"type": "ready", ...} first, then per frame one {"type": "label", ...}
(`carried: true` for frames fps sampling skipped), {"type": "error", ...} for a bad
frame (the stream goes on; also a frame over GAD_MAX_FRAME_BYTES, binary or base64 alike),
{"type": "dropped", ...} for frames the bounded queue let go, and {"type": "end", ...}
before a normal close — the types of service/wire.py (docs/wire.md). Close codes: 1000
done, 1008 auth or policy (bad id, taken over, not reading), 1009 message over
GAD_MAX_MESSAGE_BYTES, 1011 internal,
1013 overloaded (too many streams), 1001/1012 server going away (reconnect elsewhere) —
each looked up for its domain error in service/errors.py, as are the error messages' codes.

Query parameters: `delivery=live|lossless` (default live), `top_k=N`, `carry=0`, `pose=1`
(each label carries the pose encoder's joints and box: what the model sees), `token=KEY`.

Three tasks per connection: the receiver parses and queues frames, the worker processes
them in order, the sender writes replies (bounded; a client that stops reading is closed,
it cannot stall anyone else). The frame queue is bounded (GAD_QUEUE_DEPTH) either way; what
happens when it is full is the stream's delivery mode:
  live      drop a frame (the oldest by default, GAD_DROP_POLICY) and send `dropped`: a
            camera's late label is worthless, latency stays flat;
  lossless  stop reading the socket until the worker takes a frame: the frames wait in the
            TCP buffers, TCP slows the sender, and every frame gets its label, in order
            (a recorded video sent faster than real time, a client resending a gap).
            The backlog waits in the TCP buffers ahead of the client's keepalive pongs:
            one of more than the ping timeout (GAD_WS_PING_TIMEOUT_S, 20 s of this stream's
            work) ends in a 1011 close, so lossless is for a finite backlog (docs/service.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections import deque

from fastapi import APIRouter
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from runtime.errors import GADError
from runtime.preprocess import FrameError
from service.api.deps import ServedDep, SettingsDep, Streams, StreamsDep, TenantsDep
from service.auth import KEY_PROTOCOL_PREFIX, SUBPROTOCOL, authorize_websocket
from service.cache import CacheError
from service.errors import (
    BadDelivery,
    BadMessage,
    Busy,
    ServiceError,
    ShuttingDown,
    StreamEnded,
    StreamRefused,
    TooLarge,
    close_code,
    error_code,
    error_message,
)
from service.frame_models.clip_only import NO_STREAMS
from service.frames import decode_base64, decode_features, decode_json
from service.metrics import Metrics
from service.served import ServedModel
from service.session import DELIVERIES, Delivery, Frame, StreamOptions, StreamSession
from service.settings import Settings
from service.wire import Dropped, ServerMessage

log = logging.getLogger(__name__)
router = APIRouter()

# A seq must fit every client's int64 (and stay a JSON number the replies can echo); a
# capture time beyond ±1e12 s (31,700 years; Date.now() in ms by mistake) would overflow
# the sampler's slot arithmetic.
MAX_SEQ = 2**63 - 1
MAX_TS = 1e12
STREAM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # fullmatch: "$" lets "id\n" in
RESTARTING = "server restarting: reconnect"
GONE = 1006  # the client vanished without a close: nothing to send


@router.websocket("/v1/streams/{stream_id}")
async def stream_endpoint(
    websocket: WebSocket,
    stream_id: str,
    served: ServedDep,
    streams: StreamsDep,
    settings: SettingsDep,
    tenants: TenantsDep,
) -> None:
    metrics = served.metrics
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")]
    subprotocol = SUBPROTOCOL if SUBPROTOCOL in offered else None
    if any(p.startswith(KEY_PROTOCOL_PREFIX) for p in offered) and subprotocol is None:
        subprotocol = next(p for p in offered if p.startswith(KEY_PROTOCOL_PREFIX))
    await websocket.accept(subprotocol=subprotocol)
    params = websocket.query_params
    try:
        tenant = _admit(websocket, stream_id, served, streams, settings)
        delivery = _delivery(params.get("delivery"))
    except GADError as exc:  # AuthError or a refusal of service/errors.py
        await _close(websocket, close_code(exc), str(exc), metrics)
        return
    options = StreamOptions.from_settings(
        settings,
        carry_over=params.get("carry", "1") not in ("0", "false", "no"),
        pose=params.get("pose", "0") in ("1", "true", "yes"),
        top_k=_int(params.get("top_k"), settings.top_k, 1, len(served.package.classes)),
        delivery=delivery,
    )
    key = f"{tenant}/{stream_id}" if tenant else stream_id
    streams.count += 1
    metrics.active_streams.inc()
    try:
        try:
            state = await served.cache.attach(key, dim=served.package.feature_dim, span=served.span)
        except CacheError as exc:
            reason = f"feature cache unavailable: {exc}"
            await _close(websocket, close_code(exc), reason, metrics)
            return
        session = StreamSession(
            stream_id,
            state,
            options,
            model=served,
            cache=served.cache,
            metrics=metrics,
            # The caller's current version (its own or the shared): moves between frames.
            follow=lambda: tenants.loaded(tenant).current,
        )
        connection = _Connection(websocket, session, settings, metrics)
        log.info(
            "stream open at row %d", state.total_rows, extra={"stream": stream_id, "tenant": tenant}
        )
        task = asyncio.current_task()
        assert task is not None  # a route runs in a task
        streams.open.add(task)
        streams.taken(key)
        try:
            await connection.run()
        finally:
            streams.open.discard(task)
            streams.left(session, settings.stream_ttl_s)  # without `end`, an action open
    finally:
        streams.count -= 1
        metrics.active_streams.dec()


def _admit(
    websocket: WebSocket, stream_id: str, served: ServedModel, streams: Streams, settings: Settings
) -> str | None:
    """The stream's tenant (None: auth off), or the error that refuses the stream."""
    tenant = authorize_websocket(websocket, settings)
    if not STREAM_ID.fullmatch(stream_id):
        raise StreamRefused(
            "stream id must be 1-128 characters of letters, digits, '.', '_' and '-'"
        )
    if not served.streams:
        raise StreamRefused(NO_STREAMS)
    if streams.closing:
        raise ShuttingDown(RESTARTING)
    if streams.count >= settings.max_streams:
        served.metrics.frames_dropped.labels("stream_limit").inc()
        raise Busy(f"server at its {settings.max_streams}-stream limit")
    return tenant


def _delivery(value: str | None) -> Delivery:
    """The stream's delivery mode from `?delivery=` (absent: live)."""
    if value is None:
        return "live"
    for mode in DELIVERIES:
        if value == mode:
            return mode
    raise BadDelivery(f"unknown delivery {value[:40]!r}: use live or lossless")


class _Connection:
    def __init__(
        self, websocket: WebSocket, session: StreamSession, settings: Settings, metrics: Metrics
    ) -> None:
        self.ws = websocket
        self.session = session
        self.settings = settings
        self.metrics = metrics
        self.frames: deque[Frame] = deque()
        self.frame_ready = asyncio.Event()
        self.lossless = session.options.delivery == "lossless"
        self.frame_taken = asyncio.Event()  # lossless: the worker made room in the queue
        self.outbox: asyncio.Queue[ServerMessage | None] = asyncio.Queue(self.settings.send_queue)
        self.ended = False
        self.given_up = False  # the client stopped reading: counted once
        self.close_code = 1000
        self.close_reason = ""

    async def run(self) -> None:
        await self.send(self.session.ready())
        tasks = [
            asyncio.create_task(self._receive(), name="ws-receive"),
            asyncio.create_task(self._work(), name="ws-work"),
            asyncio.create_task(self._send(), name="ws-send"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if (failure := task.exception()) is not None:
                    raise failure
            await asyncio.gather(*tasks)
        except ServiceError as exc:  # closed on purpose: too big, refused, ended
            self.close_code, self.close_reason = close_code(exc), str(exc)
        except WebSocketDisconnect:
            self.close_code = GONE  # the cache keeps the window
        except asyncio.CancelledError:
            self.close_code, self.close_reason = close_code(ShuttingDown()), RESTARTING
            raise
        except Exception as exc:
            log.exception("stream %s failed", self.session.stream_id)
            self.close_code, self.close_reason = close_code(exc), "internal error"
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task
            await _close(self.ws, self.close_code, self.close_reason, self.metrics)
            log.info(
                "stream closed: %d rows, %d labels, %d carried over",
                self.session.state.total_rows,
                self.session.processed,
                self.session.carried,
                extra={"stream": self.session.stream_id, "code": self.close_code},
            )

    # --- receiving ---------------------------------------------------------------------

    async def _receive(self) -> None:
        metrics = self.metrics
        while not self.ended:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1006))
            arrived = time.monotonic()
            data, text = message.get("bytes"), message.get("text")
            size = len(data) if data is not None else len((text or "").encode())
            if size > self.settings.max_message_bytes:
                raise TooLarge(f"message of {size} bytes is over the limit")
            if data is not None:
                metrics.frames_received.labels("image").inc()
                await self._queue(Frame(None, None, image=data, arrived=arrived))
                continue
            try:
                frame = self._parse(text or "", arrived)
            except FrameError as exc:  # a refusal while reading a message: the message's fault
                refusal = BadMessage(str(exc))
                metrics.frame_errors.labels(error_code(refusal)).inc()
                await self.send(error_message(refusal))
                continue
            if frame is None:  # {"type": "end"}
                self.ended = True
                self.frame_ready.set()
                return
            await self._queue(frame)

    def _parse(self, text: str, arrived: float) -> Frame | None:
        try:
            message = decode_json(text)
        except ValueError as exc:
            raise BadMessage(str(exc)) from exc
        if not isinstance(message, dict):
            raise BadMessage("a text message must be a JSON object with a 'type'")
        kind = message.get("type")
        if kind == "end":
            return None
        if kind not in ("frame", "features"):
            raise BadMessage(f"unknown message type {str(kind)[:40]!r}: use frame, features or end")
        seq, ts = message.get("seq"), message.get("ts")
        if seq is not None and (
            not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= MAX_SEQ
        ):
            raise BadMessage(f"'seq' must be an integer from 0 to {MAX_SEQ}")
        # abs(ts) <= MAX_TS also refuses NaN, and compares a 4000-digit int without overflow.
        if ts is not None and (
            not isinstance(ts, int | float) or isinstance(ts, bool) or not abs(ts) <= MAX_TS
        ):
            raise BadMessage(f"'ts' must be a finite number of seconds, |ts| <= {MAX_TS:g}")
        metrics = self.metrics
        if kind == "frame":
            metrics.frames_received.labels("image").inc()
            image = decode_base64(message.get("image"), field="image")  # size: decode_image
            return Frame(seq, None if ts is None else float(ts), image=image, arrived=arrived)
        metrics.frames_received.labels("features").inc()
        row = decode_features(message.get("data"), dim=self.session.feature_dim)
        return Frame(seq, None if ts is None else float(ts), features=row, arrived=arrived)

    async def _queue(self, frame: Frame) -> None:
        if self.lossless:
            # Wait for room without reading: the socket's frames stay in the TCP buffers
            # and the sender is slowed. The worker frees a slot unless it is stuck sending
            # to a client that does not read, which send() closes after GAD_SEND_TIMEOUT_S.
            while len(self.frames) >= self.settings.queue_depth:
                self.frame_taken.clear()
                await self.frame_taken.wait()
        elif len(self.frames) >= self.settings.queue_depth:
            metrics = self.metrics
            if self.settings.drop_policy == "drop-newest":
                metrics.frames_dropped.labels("queue_full").inc()
                await self.send(_dropped(frame))
                return
            dropped = self.frames.popleft()
            metrics.frames_dropped.labels("queue_full").inc()
            await self.send(_dropped(dropped))
        self.frames.append(frame)
        self.frame_ready.set()

    # --- working -----------------------------------------------------------------------

    async def _work(self) -> None:
        metrics = self.metrics
        while True:
            if not self.frames:
                if self.ended:
                    await self.send(await self.session.end())
                    await self.send(None)
                    return
                self.frame_ready.clear()
                await self.frame_ready.wait()
                continue
            frame = self.frames.popleft()
            self.frame_taken.set()
            metrics.queue_wait.observe(time.monotonic() - frame.arrived)
            reply = await self.session.process(frame)
            if reply is not None:
                if reply["type"] == "label" and frame.arrived:
                    metrics.latency.observe(time.monotonic() - frame.arrived)
                await self.send(reply)

    # --- sending -----------------------------------------------------------------------

    async def send(self, message: ServerMessage | None) -> None:
        """Queue a reply for the sender task. A full outbox is waited on (the receiver then
        stops reading: TCP backpressure on a client that sends faster than it reads) for
        up to GAD_SEND_TIMEOUT_S; a client whose replies stay unread that long is closed."""
        try:
            self.outbox.put_nowait(message)
            return
        except asyncio.QueueFull:
            pass
        try:
            await asyncio.wait_for(self.outbox.put(message), self.settings.send_timeout_s)
        except TimeoutError:
            if not self.given_up:  # the receiver and the worker may both be waiting
                self.given_up = True
                self.metrics.frames_dropped.labels("client_not_reading").inc()
            raise StreamRefused("client is not reading its messages") from None

    async def _send(self) -> None:
        while True:
            message = await self.outbox.get()
            if message is None:
                raise StreamEnded("stream ended")
            await self.ws.send_text(json.dumps(message, separators=(",", ":")))


def _dropped(frame: Frame) -> Dropped:
    return {"type": "dropped", "seq": frame.seq, "reason": "queue full"}


def _int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(max(int(value), low), high) if value is not None else default
    except ValueError:
        return default


async def _close(websocket: WebSocket, code: int, reason: str, metrics: Metrics) -> None:
    metrics.streams_closed.labels(str(code)).inc()
    if websocket.application_state == WebSocketState.DISCONNECTED:
        return
    if code == GONE:  # nothing to send
        return
    with contextlib.suppress(Exception):
        await websocket.close(code=code, reason=reason[:120])
