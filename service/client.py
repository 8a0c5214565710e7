"""`gad stream`: send a video to a running service over the WebSocket and print labels.

Frames are read with the same sampler the server uses (runtime/video.py) at the server's fps
(from its `ready` message) unless --fps says otherwise, and sent with their capture
timestamps — paced in real time with --realtime, else as fast as the server answers.
`gad stream` sends JPEG at most DEFAULT_SEND_WIDTH pixels wide (the encoders see 512 or
fewer): a full-size PNG costs the server its decode and the link its bytes (docs/pose.md,
"Streaming a file"). PNG at full size (`--format png`) is lossless, so its labels equal
`/classify` on the same file.

A client that cannot reach the service, or that the service refuses, fails with one line
and a hint (`failure_message`), never a traceback.

Delivery (`?delivery=`, service/api/ws.py): a file sent as fast as possible streams
`lossless` — the server stops reading while its queue is full, TCP slows this sender, and
every frame gets its label; a file played in real time stands for a camera and streams
`live` (a frame the server cannot keep up with is dropped, latency stays flat).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import json
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import cv2
import numpy as np

from runtime.errors import GADError
from runtime.video import read_frames
from service.wire import End, Error, Label, NoLabel, Ready, ServerMessage

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection


# `gad stream`'s defaults for a file: frames scaled down (never up) to this width, keeping
# their aspect, and JPEG at this quality.
DEFAULT_SEND_WIDTH = 640
DEFAULT_JPEG_QUALITY = 80
DEFAULT_URL = "ws://127.0.0.1:8000/v1/streams/cli"


@dataclass
class StreamReport:
    sent: int = 0
    labels: list[Label | NoLabel] = field(default_factory=list)
    errors: list[Error] = field(default_factory=list)
    dropped: int = 0
    round_trips_ms: list[float] = field(default_factory=list)
    end: End | None = None
    ready: Ready | None = None

    def summary(self) -> dict[str, Any]:
        rtt = sorted(self.round_trips_ms)
        server = sorted(m["latency_ms"] for m in self.labels if m["label"] and not m["carried"])

        def pct(values: list[float], q: float) -> float | None:
            if not values:
                return None
            return round(values[min(len(values) - 1, int(q / 100 * len(values)))], 2)

        return {
            "delivery": None if self.ready is None else self.ready["delivery"],
            "sent": self.sent,
            "labels": len(self.labels),
            "carried": sum(m["carried"] for m in self.labels),
            "errors": len(self.errors),
            "dropped": self.dropped,
            "round_trip_ms": {q: pct(rtt, q) for q in (50, 95, 99)},
            "server_ms": {q: pct(server, q) for q in (50, 95, 99)},
            "mean_round_trip_ms": round(statistics.fmean(rtt), 2) if rtt else None,
        }


def fit_width(rgb: np.ndarray, width: int | None) -> np.ndarray:
    """`rgb` scaled down to `width` pixels wide, aspect kept (None or 0, or a frame no
    wider: as it is)."""
    height, current = rgb.shape[:2]
    if not width or current <= width:
        return rgb
    size = (width, max(1, round(height * width / current)))
    scaled: np.ndarray = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return scaled


def encode_frame(rgb: np.ndarray, fmt: str, quality: int) -> bytes:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == "jpeg" else []
    ok, data = cv2.imencode(".png" if fmt == "png" else ".jpg", bgr, params)
    if not ok:
        raise GADError("could not encode a frame")
    return data.tobytes()


class FrameStream:
    """One open stream: frame messages out, every answer matched to its frame's send time.

    The one WebSocket client of the service: `gad stream` and the service benchmarks
    (bench/streams.py) send and read through it.
    """

    def __init__(self, ws: ClientConnection, ready: Ready) -> None:
        self.ws = ws
        self.ready = ready  # the server's `ready` message
        self.pending: dict[int, float] = {}  # seq → monotonic time sent, until answered

    async def send(self, seq: int, ts: float, image: str) -> None:
        """Frame `seq` captured at `ts` seconds; `image` is base64 (no JSON escaping needed)."""
        self.pending[seq] = time.monotonic()
        await self.ws.send(f'{{"type":"frame","seq":{seq},"ts":{ts},"image":"{image}"}}')

    async def end(self) -> None:
        await self.ws.send('{"type":"end"}')

    async def answers(self) -> AsyncIterator[tuple[ServerMessage, float | None]]:
        """Each message from the server, through its `end`, with the round trip in ms of the
        frame it answers (None when it answers no frame sent here)."""
        async for raw in self.ws:
            message = cast(ServerMessage, json.loads(raw))
            seq = message.get("seq")
            sent = self.pending.pop(seq, None) if isinstance(seq, int) else None
            yield message, None if sent is None else (time.monotonic() - sent) * 1e3
            if message["type"] == "end":
                return


# A lossless stream's kernel send buffer. Left alone it grows to tcp_wmem's limit (4 MiB:
# hundreds of JPEG frames, seconds of the server's work) before the server's backpressure
# reaches this sender; at 256 KiB (~15 camera JPEGs) send() blocks soon instead, and the
# frames wait here, in order, rather than in the kernel. (The server's buffers still hold
# a backlog: docs/benchmarks/load.md, "Delivery modes".)
LOSSLESS_SEND_BUFFER = 256 << 10


def with_query(url: str, **params: str | None) -> str:
    """`url` with these query parameters set (None leaves one as it is)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query |= {key: value for key, value in params.items() if value is not None}
    return urlunsplit(parts._replace(query=urlencode(query)))


@contextlib.asynccontextmanager
async def open_stream(
    url: str,
    *,
    token: str | None = None,
    delivery: str | None = None,
    max_size: int = 1 << 24,
    open_timeout: float = 10.0,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
) -> AsyncIterator[FrameStream]:
    """Connect to `url` (ws://HOST/v1/streams/ID) and read the `ready` message; `delivery`
    ("live" or "lossless") sets `?delivery=` (None: the URL's, else the server's live).
    `open_timeout` bounds the connect and the wait for `ready`; the pings find a dead peer
    (the gateway pings every few seconds: a camera's stream should not wait 40 s)."""
    import websockets

    headers = {"Authorization": f"Bearer {token}"} if token else None
    url = with_query(url, delivery=delivery)
    async with websockets.connect(
        url,
        additional_headers=headers,
        max_size=max_size,
        open_timeout=open_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
    ) as ws:
        if dict(parse_qsl(urlsplit(url).query)).get("delivery") == "lossless":
            sock = ws.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, LOSSLESS_SEND_BUFFER)
        ready = json.loads(await asyncio.wait_for(ws.recv(), open_timeout))
        if not isinstance(ready, dict) or ready.get("type") != "ready":
            raise GADError(f"expected a ready message, got {ready}")
        yield FrameStream(ws, cast(Ready, ready))


async def stream_video(
    url: str,
    video: Path,
    *,
    fps: float | None = None,
    token: str | None = None,
    fmt: str = "png",
    quality: int = 90,
    send_width: int | None = None,
    realtime: bool = False,
    delivery: str | None = None,
    window: int = 4,
    on_message: Callable[[ServerMessage], None] | None = None,
) -> StreamReport:
    """Stream `video` (every frame gets exactly one answer: a label, an error or a drop
    notice), each frame scaled down to `send_width` (None: full size) and encoded as `fmt`.
    `delivery` defaults to live with `realtime` (a camera) and lossless without (a
    file sent as fast as the server takes it: its backpressure paces the sending). A live
    stream not in real time keeps at most `window` frames awaiting their answer, so its
    queue never overflows."""
    report = StreamReport()
    delivery = delivery or ("live" if realtime else "lossless")
    paced_by_server = realtime or delivery == "lossless"
    async with open_stream(url, token=token, delivery=delivery) as stream:
        report.ready = stream.ready
        rate = fps or float(stream.ready["fps"])
        in_flight = asyncio.Semaphore(max(1, window))

        async def send() -> None:
            start = time.monotonic()
            for seq, frame in enumerate(read_frames(video, rate)):
                if realtime:
                    await asyncio.sleep(max(0.0, frame.t - (time.monotonic() - start)))
                elif not paced_by_server:
                    await in_flight.acquire()
                image = encode_frame(fit_width(frame.rgb, send_width), fmt, quality)
                await stream.send(seq, frame.t, base64.b64encode(image).decode())
                report.sent += 1
            await stream.end()

        async def receive() -> None:
            async for message, round_trip_ms in stream.answers():
                if message["type"] in ("label", "error", "dropped") and not paced_by_server:
                    in_flight.release()
                if message["type"] == "label":
                    report.labels.append(message)
                    if round_trip_ms is not None:
                        report.round_trips_ms.append(round_trip_ms)
                elif message["type"] == "error":
                    report.errors.append(message)
                elif message["type"] == "dropped":
                    report.dropped += 1
                elif message["type"] == "end":
                    report.end = message
                if on_message is not None:
                    on_message(message)

        await asyncio.gather(send(), receive())
    return report


def print_message(message: ServerMessage) -> None:
    kind = message["type"]
    if message["type"] == "label" and message["label"] is None:
        sys.stdout.write(f"seq {message['seq']:>5}  (no label yet)\n")
    elif message["type"] == "label" and message["label"] is not None:
        label = message
        top = ", ".join(f"{name} {score:.2f}" for name, score in label["top"][1:])
        flag = " (carried)" if label["carried"] else ""
        sys.stdout.write(
            f"seq {label['seq']:>5}  t {label['t']:7.2f}s  {label['label']:<24} "
            f"{label['score']:.2f}  {label['latency_ms']:7.1f} ms{flag}  | {top}\n"
        )
    elif kind in ("error", "dropped"):
        sys.stdout.write(f"{kind}: {json.dumps(message)}\n")


def failure_message(exc: BaseException, url: str | None = None) -> str | None:
    """One line, with a hint, for why a client of the service failed: it is not running,
    the URL is wrong, the key is refused, the stream was closed, no answer came. None for
    an exception that is not about the connection (a bug: its traceback is worth seeing)."""
    from websockets.exceptions import (
        ConnectionClosed,
        InvalidHandshake,
        InvalidStatus,
        InvalidURI,
        WebSocketException,
    )

    where = url or "the service"
    if isinstance(exc, InvalidURI):
        shown = url or exc.uri
        return f"{shown!r} is not a stream URL ({exc.msg}); hint: --url {suggested_url(shown)}"
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if status in (401, 403) and exc.response.headers.get("WWW-Authenticate"):
            return f"{where} refused the API key (HTTP {status}); hint: {KEY_HINT}"
        if status in (403, 404):  # Starlette answers a WebSocket to an unknown path with 403
            return (
                f"no stream endpoint at {where} (HTTP {status}); "
                f"hint: the path is /v1/streams/ID, e.g. --url {suggested_url(where)}"
            )
        if status == 503:
            return (
                f"{where} is not ready or is shutting down (HTTP 503); "
                "hint: wait for its /readyz, then run again"
            )
        return f"{where} answered HTTP {status} instead of a WebSocket; hint: {URL_HINT}"
    if isinstance(exc, ConnectionClosed):
        return _closed(exc, where)
    if isinstance(exc, InvalidHandshake):  # an HTTP server, not this service; a proxy
        return f"{where} did not answer as a WebSocket server ({exc}); hint: {URL_HINT}"
    if isinstance(exc, TimeoutError):
        return (
            f"no answer from {where} in time; hint: is the server up and the host reachable? "
            "(curl http://HOST:PORT/readyz)"
        )
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host of {where} ({exc.strerror}); hint: check --url"
    if isinstance(exc, ConnectionRefusedError) or (
        isinstance(exc, OSError) and "Connect call failed" in str(exc)
    ):
        return (
            f"cannot connect to {where}: connection refused; hint: is the server running? "
            "start it with `gad serve` (make run), or fix --url"
        )
    if isinstance(exc, ConnectionError) or (
        isinstance(exc, OSError) and exc.errno in NETWORK_ERRNOS
    ):
        return f"cannot reach {where}: {exc.strerror or exc}; hint: check --url and the network"
    if isinstance(exc, WebSocketException):
        return f"the stream at {where} failed: {type(exc).__name__}: {exc}; hint: {URL_HINT}"
    return None


KEY_HINT = "pass the service's API key with --token KEY or GAD_TOKEN (GAD_API_KEYS on the server)"
URL_HINT = f"is the URL a GAD Stream service? (`gad serve` listens on {DEFAULT_URL})"
NETWORK_ERRNOS = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.ETIMEDOUT}
)


def _closed(exc: BaseException, where: str) -> str:
    from websockets.exceptions import ConnectionClosed

    assert isinstance(exc, ConnectionClosed)
    code = exc.rcvd.code if exc.rcvd is not None else 1006
    reason = exc.rcvd.reason if exc.rcvd is not None else ""
    said = f"{code} {reason}".strip()
    if code == 1008 and "key" in reason.lower():
        return f"{where} refused the API key ({reason}); hint: {KEY_HINT}"
    if code == 1008:
        return f"{where} refused the stream ({said}); hint: see docs/wire.md, close codes"
    if code == 1012:
        return (
            f"the service is restarting and closed the stream ({said}); "
            "hint: run again once it is back"
        )
    if code == 1013:
        return (
            f"the service is busy ({said}); hint: try again shortly, or raise GAD_MAX_STREAMS "
            "on the server"
        )
    if code == 1009:
        return f"a frame was over the service's size limit ({said}); hint: lower --send-width"
    if code == 1006:
        return (
            f"the connection to {where} dropped without a close (the server stopped, or the "
            "network); hint: is the server still running?"
        )
    if code == 1000:
        return f"the service ended the stream ({said})"
    return f"the service closed the stream ({said}); hint: see the server's log"


def suggested_url(url: str) -> str:
    """A stream URL on the host of `url` (http → ws): what --url should look like."""
    parts = urlsplit(url if "://" in url else f"ws://{url}")
    scheme = "wss" if parts.scheme in ("https", "wss") else "ws"
    host = parts.netloc or "127.0.0.1:8000"
    return f"{scheme}://{host}/v1/streams/cli"
