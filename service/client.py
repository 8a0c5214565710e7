"""`gad stream`: send a video to a running service over the WebSocket and print labels.

Frames are read with the same sampler the server uses (runtime/video.py) at the server's fps
(from its `ready` message) unless --fps says otherwise, and sent with their capture
timestamps — paced in real time with --realtime, else as fast as the server answers.
PNG frames are lossless, so the labels equal `/classify` on the same file; JPEG is smaller.
"""

from __future__ import annotations

import asyncio
import base64
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from runtime.errors import GADError
from runtime.video import read_frames


@dataclass
class StreamReport:
    sent: int = 0
    labels: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0
    round_trips_ms: list[float] = field(default_factory=list)
    end: dict[str, Any] | None = None
    ready: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        rtt = sorted(self.round_trips_ms)
        server = sorted(m["latency_ms"] for m in self.labels if not m.get("carried"))

        def pct(values: list[float], q: float) -> float | None:
            if not values:
                return None
            return round(values[min(len(values) - 1, int(q / 100 * len(values)))], 2)

        return {
            "sent": self.sent,
            "labels": len(self.labels),
            "carried": sum(bool(m.get("carried")) for m in self.labels),
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


async def stream_video(
    url: str,
    video: Path,
    *,
    fps: float | None = None,
    token: str | None = None,
    fmt: str = "png",
    quality: int = 90,
    realtime: bool = False,
    window: int = 4,
    on_message=None,
) -> StreamReport:
    """Stream `video`; without `realtime`, at most `window` frames await their answer
    (every frame gets exactly one: a label, an error or a drop notice)."""
    import websockets

    headers = {"Authorization": f"Bearer {token}"} if token else None
    report = StreamReport()
    sent_at: dict[int, float] = {}
    async with websockets.connect(
        url, additional_headers=headers, max_size=1 << 24, open_timeout=10
    ) as ws:
        ready = json.loads(await ws.recv())
        if ready.get("type") != "ready":
            raise GADError(f"expected a ready message, got {ready}")
        report.ready = ready
        rate = fps or float(ready["fps"])
        in_flight = asyncio.Semaphore(max(1, window))

        async def send() -> None:
            start = time.monotonic()
            for seq, frame in enumerate(read_frames(video, rate)):
                if realtime:
                    await asyncio.sleep(max(0.0, frame.t - (time.monotonic() - start)))
                else:
                    await in_flight.acquire()
                image = encode_frame(frame.rgb, fmt, quality)
                message = {
                    "type": "frame",
                    "seq": seq,
                    "ts": frame.t,
                    "image": base64.b64encode(image).decode(),
                }
                sent_at[seq] = time.monotonic()
                await ws.send(json.dumps(message))
                report.sent += 1
            await ws.send(json.dumps({"type": "end"}))

        async def receive() -> None:
            async for raw in ws:
                message = json.loads(raw)
                kind = message.get("type")
                if kind in ("label", "error", "dropped") and not realtime:
                    in_flight.release()
                if kind == "label":
                    report.labels.append(message)
                    if message.get("seq") in sent_at:
                        rtt = (time.monotonic() - sent_at.pop(message["seq"])) * 1e3
                        report.round_trips_ms.append(rtt)
                elif kind == "error":
                    report.errors.append(message)
                elif kind == "dropped":
                    report.dropped += 1
                elif kind == "end":
                    report.end = message
                if on_message is not None:
                    on_message(message)
                if kind == "end":
                    return

        await asyncio.gather(send(), receive())
    return report


def print_message(message: dict[str, Any]) -> None:
    kind = message.get("type")
    if kind == "label":
        top = ", ".join(f"{name} {score:.2f}" for name, score in message.get("top", [])[1:])
        flag = " (carried)" if message.get("carried") else ""
        sys.stdout.write(
            f"seq {message['seq']:>5}  t {message.get('t', 0):7.2f}s  {message['label']:<24} "
            f"{message['score']:.2f}  {message['latency_ms']:7.1f} ms{flag}  | {top}\n"
        )
    elif kind in ("error", "dropped"):
        sys.stdout.write(f"{kind}: {json.dumps(message)}\n")
