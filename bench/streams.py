"""The paced stream client of the service benchmarks (`gad bench service`, `load`, `soak`).

A camera sends a frame every 1/fps seconds whether or not the last one was answered, and so
does this client: each stream sends JPEG frames, base64-encoded once before measuring and
cycled, on a fixed clock (the k-th frame at start + k / rate, stamped seq / fps) through
`service.client.FrameStream`, and counts every answer into one `Tally` that the streams of
a run share. `StreamGroup` opens N streams, waits until every one is connected (or
refused), starts them together on one clock and gathers them.

Each stream asks for a delivery mode (`?delivery=`, service/api/ws.py): `live` drops what
the server cannot keep up with; `lossless` slows this client's sending instead (its send
blocks), so frames leave late — `Tally.due_ms` (a frame's place on the clock → its label)
shows that wait, which the round trip (send → label) and the server latency do not.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runtime.errors import GADError
from runtime.video import read_frames
from service.client import FrameStream, encode_frame, open_stream

log = logging.getLogger(__name__)


def load_frames(video: Path, fps: float, seconds: float) -> list[str]:
    """The first `seconds` of `video` sampled at `fps`, as base64 JPEG (quality 85)."""
    frames = []
    for frame in read_frames(video, fps):
        if frame.t >= seconds:
            break
        frames.append(base64.b64encode(encode_frame(frame.rgb, "jpeg", 85)).decode())
    return frames


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


@dataclass
class Tally:
    """What the streams of one run counted; they all add into one."""

    _: KW_ONLY
    sent: int = 0
    labels: int = 0
    carried: int = 0  # labels carried over to frames that fps sampling skips
    dropped: int = 0
    errors: int = 0
    refused: int = 0  # streams that could not connect or were closed with a code != 1000
    unanswered: int = 0  # frames without a label, drop or error when their stream ended
    client_late_ms: float = 0.0  # the client's worst lateness against its own schedule
    server_ms: list[float] = field(default_factory=list)  # frame arrival → label sent
    client_ms: list[float] = field(default_factory=list)  # frame sent → label received
    due_ms: list[float] = field(default_factory=list)  # frame due on the clock → label received

    def count(self, message: dict[str, Any], round_trip_ms: float | None) -> None:
        kind = message.get("type")
        if kind == "label":
            self.labels += 1
            if message.get("carried"):
                self.carried += 1
            else:
                self.server_ms.append(message["latency_ms"])
            if round_trip_ms is not None:
                self.client_ms.append(round_trip_ms)
        elif kind == "dropped":
            self.dropped += 1
        elif kind == "error":
            self.errors += 1

    def p(self, q: float, client: bool = False) -> float:
        """The q-th percentile of the server latency (or the client's round trip), ms."""
        return percentile(self.client_ms if client else self.server_ms, q)

    def p_due(self, q: float) -> float:
        """The q-th percentile of frame due → label received, ms (what a camera sees)."""
        return percentile(self.due_ms, q)


async def play(
    stream: FrameStream,
    frames: Sequence[str],
    tally: Tally,
    *,
    fps: float,
    start: float,
    count: int | None = None,
    until: float | None = None,
    rate: float | None = None,
    first_seq: int = 0,
) -> None:
    """Send frames on the clock, the k-th at `start + k / rate` (`rate` defaults to `fps`)
    as seq `first_seq + k` stamped seq / fps, for `count` frames or until `until` (both
    `time.monotonic()` times); then end the stream. Every answer counts into `tally` until
    the server's `end`."""
    if count is None and until is None:
        raise GADError("play needs a frame count or an end time")
    every = 1 / (rate or fps)
    unanswered: dict[int, float] = {}  # seq → its time on the clock, until labelled

    async def send() -> None:
        k = 0
        while count is None or k < count:
            due = start + k * every
            if until is not None and due >= until:
                break
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:  # behind: a slow client, or (lossless) the server's backpressure
                tally.client_late_ms = max(tally.client_late_ms, -delay * 1e3)
            seq = first_seq + k
            unanswered[seq] = due
            await stream.send(seq, round(seq / fps, 6), frames[seq % len(frames)])
            tally.sent += 1
            k += 1
        await stream.end()

    sender = asyncio.create_task(send())
    try:
        async for message, round_trip_ms in stream.answers():
            tally.count(message, round_trip_ms)
            due = unanswered.pop(message.get("seq", -1), None)
            if due is not None and message.get("type") == "label":
                tally.due_ms.append((time.monotonic() - due) * 1e3)
        await sender
    finally:
        sender.cancel()


class StreamGroup:
    """N paced streams (one per URL) of `seconds` of frames each: connected first, then
    started together; with `spread`, stream i starts i / N of a frame period later
    (cameras are not synchronised), else all send in step."""

    def __init__(
        self,
        urls: Sequence[str],
        frames: Sequence[str],
        tally: Tally,
        *,
        fps: float,
        seconds: float,
        spread: bool = True,
        rate: float | None = None,
        delivery: str | None = None,
    ) -> None:
        self.urls, self.frames, self.tally = list(urls), frames, tally
        self.fps, self.rate, self.spread = fps, rate or fps, spread
        self.count = math.ceil(seconds * self.rate)
        self.delivery = delivery
        self._go, self._all_in = asyncio.Event(), asyncio.Event()
        self._connected = self._refused = 0
        self._start = 0.0
        self._tasks: list[asyncio.Task[None]] = []

    async def connect(self, timeout: float = 60.0) -> None:
        """Open every stream; returns once each one is connected or refused."""
        self._tasks = [asyncio.create_task(self._run(i, url)) for i, url in enumerate(self.urls)]
        await asyncio.wait_for(self._all_in.wait(), timeout=timeout)

    def start(self, delay: float = 0.2) -> float:
        """Start sending `delay` seconds from now; returns that time (`time.monotonic()`)."""
        self._start = time.monotonic() + delay
        self._go.set()
        return self._start

    async def finish(self, grace: float | None = None) -> None:
        """Wait until every stream has ended; the ones still open after `grace` seconds are
        cancelled (their frames still pending count as unanswered)."""
        _, late = await asyncio.wait(self._tasks, timeout=grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _arrived(self) -> None:
        if self._connected + self._refused >= len(self.urls):
            self._all_in.set()

    async def _run(self, i: int, url: str) -> None:
        import websockets

        phase = i / len(self.urls) / self.fps if self.spread else 0.0
        stream = None
        try:
            async with open_stream(
                url, delivery=self.delivery, max_size=1 << 22, open_timeout=30
            ) as stream:
                self._connected += 1
                self._arrived()
                await self._go.wait()
                await play(
                    stream,
                    self.frames,
                    self.tally,
                    fps=self.fps,
                    start=self._start + phase,
                    count=self.count,
                    rate=self.rate,
                )
        except (OSError, TimeoutError, GADError, websockets.WebSocketException) as exc:
            code = getattr(getattr(exc, "rcvd", None), "code", None)
            log.debug("stream %s: %s (close code %s)", url, exc, code)
            self.tally.refused += 1
            self._refused += 1
            self._arrived()
        finally:
            if stream is not None:
                self.tally.unanswered += len(stream.pending)
