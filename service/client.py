"""`gad stream`: send a video to a running service over the WebSocket and print labels.

Frames are read with the same sampler the server uses (runtime/video.py) at the server's fps
(from its `ready` message) unless --fps says otherwise, and sent with their capture
timestamps — paced in real time with --realtime, else as fast as the server answers.
PNG frames are lossless, so the labels equal `/classify` on the same file; JPEG is smaller.

Delivery (`?delivery=`, service/api/ws.py): a file sent as fast as possible streams
`lossless` — the server stops reading while its queue is full, TCP slows this sender, and
every frame gets its label; a file played in real time stands for a camera and streams
`live` (a frame the server cannot keep up with is dropped, latency stays flat).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
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
    realtime: bool = False,
    delivery: str | None = None,
    window: int = 4,
    on_message: Callable[[ServerMessage], None] | None = None,
) -> StreamReport:
    """Stream `video` (every frame gets exactly one answer: a label, an error or a drop
    notice). `delivery` defaults to live with `realtime` (a camera) and lossless without (a
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
                image = encode_frame(frame.rgb, fmt, quality)
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
