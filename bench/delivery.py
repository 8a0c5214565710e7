"""Delivery modes under the same offered overload: `live` against `lossless`
(`?delivery=`, service/api/ws.py).

One `gad serve` replica (in-process cache, onnxruntime CPU, 1 thread). N streams each send
a video's JPEG frames — encoded once before measuring — at `rate` frames/s, above what the
replica labels, each frame a new row (stamped seq / fps, as `gad bench soak` does), for
`seconds`; then each stream ends and waits for the rest of its answers. The same schedule
runs once per mode on the same replica, after a short warm-up. What to expect:

    live      every frame sent on time; the queue drops what the replica cannot label
              (a `dropped` notice each); latency stays flat
    lossless  nothing dropped, every frame sent gets its label; the replica stops reading
              while a stream's queue is full, so frames wait in the TCP buffers, latency
              (frame due → label) grows, and once the buffers are full the sender is slowed
              (fewer frames leave in the same time)

Loopback only; client and replica share this machine's cores.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.launch import Server, served
from bench.streams import Tally, load_frames, play
from bench.usage import machine_cpu, process_usage
from runtime.errors import GADError
from runtime.manifest import read_package
from service.client import open_stream

MODES = ("live", "lossless")


@dataclass
class DeliveryRun(Tally):
    delivery: str
    streams: int
    rate: float  # frames/s offered per stream
    seconds: float
    drain_s: float = math.nan  # from the last frame due until every stream had its answers
    server_cpu: float = math.nan  # the replica's CPU from start to drained, in cores
    machine_busy: float = math.nan  # share of all cores busy, the same time (everything)
    closed: list[str] = field(default_factory=list)  # streams the server closed: code, reason

    @property
    def offered(self) -> int:
        return round(self.streams * self.rate * self.seconds)


def run_mode(
    server: Server,
    frames: list[str],
    *,
    delivery: str,
    streams: int,
    rate: float,
    fps: float,
    seconds: float,
) -> DeliveryRun:
    run = DeliveryRun(delivery, streams, rate, seconds)

    async def one(i: int, start: float, until: float) -> None:
        import websockets

        url = f"{server.ws_url}/v1/streams/delivery-{delivery}-{i}-{time.time_ns()}"
        async with open_stream(url, delivery=delivery, max_size=1 << 22) as stream:
            if stream.ready.get("delivery") != delivery:
                raise GADError(f"asked for {delivery} delivery, got {stream.ready}")
            phase = i / streams / rate  # cameras are not synchronised
            try:
                await play(
                    stream, frames, run, fps=fps, start=start + phase, until=until, rate=rate
                )
            except websockets.ConnectionClosed as exc:
                close = exc.rcvd
                run.closed.append(f"{close.code} {close.reason}" if close else "no close frame")
            run.unanswered += len(stream.pending)

    async def main() -> None:
        began = time.monotonic()
        start = began + 1.0  # every stream connected by then
        until = start + seconds
        cpu0, machine0 = process_usage(server.process.pid).cpu_s, machine_cpu()
        await asyncio.gather(*(one(i, start, until) for i in range(streams)))
        ended = time.monotonic()
        run.drain_s = ended - until
        run.server_cpu = (process_usage(server.process.pid).cpu_s - cpu0) / (ended - began)
        machine1 = machine_cpu()
        run.machine_busy = (machine1[0] - machine0[0]) / max(1e-9, machine1[1] - machine0[1])

    asyncio.run(main())
    return run


def bench_delivery(
    package: Path,
    video: Path,
    *,
    streams: int = 4,
    rate: float = 40.0,
    seconds: float = 20.0,
    queue_depth: int = 8,
    threads: int = 1,
) -> list[DeliveryRun]:
    """One run per mode (live, then lossless) of the same offered overload."""
    if not 1 <= streams <= 64 or not 0 < rate <= 1000 or not 2 <= seconds <= 300:
        raise GADError(
            f"need 1-64 streams, 0-1000 frames/s, 2-300 s; got {streams}, {rate}, {seconds}"
        )
    fps = read_package(package).fps
    frames = load_frames(video, fps, min(seconds, 60.0))
    env = {
        "GAD_THREADS": str(threads),
        "GAD_PROVIDERS": "cpu",
        "GAD_QUEUE_DEPTH": str(queue_depth),
        "GAD_LOG_LEVEL": "WARNING",
    }
    common = {"streams": streams, "rate": rate, "fps": fps}
    with served(package, env=env) as server:
        run_mode(server, frames, delivery="live", seconds=2.0, **common)  # warm-up
        runs = []
        for delivery in MODES:
            time.sleep(1.0)
            runs.append(run_mode(server, frames, delivery=delivery, seconds=seconds, **common))
    return runs


def render_delivery(runs: list[DeliveryRun], *, package: Path, cpu: str) -> str:
    manifest = read_package(package)
    first = runs[0]
    lines = [
        f"Model {manifest.name} v{manifest.version} ({manifest.fps:g} fps); one `gad serve` "
        f"(onnxruntime CPU, 1 thread, in-process cache); {first.streams} streams each offered "
        f"{first.rate:g} JPEG frames/s of new rows ({first.rate / manifest.fps:g}x real time) "
        f"for {first.seconds:g} s, then ended; client and replica on one machine: {cpu}, "
        f"{os.cpu_count()} cores, load average at the end {os.getloadavg()[0]:.1f}.",
        "",
        "| delivery | offered | sent | labels | dropped | errors + unanswered | "
        "labelled frames/s | server p50 / p99 ms | round trip p50 / p99 ms | "
        "due → label p50 / p99 ms | sender late by (max ms) | drain after the last due s | "
        "replica CPU (cores) | machine busy |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---|---:|---:|---:|---:|",
    ]
    for r in runs:
        server = " / ".join(f"{r.p(q):.0f}" for q in (50, 99))
        client = " / ".join(f"{r.p(q, client=True):.0f}" for q in (50, 99))
        due = " / ".join(f"{r.p_due(q):.0f}" for q in (50, 99))
        labelled = (r.labels - r.carried) / (r.seconds + r.drain_s)
        lines.append(
            f"| {r.delivery} | {r.offered} | {r.sent} | {r.labels} | {r.dropped} | "
            f"{r.errors + r.unanswered} | {labelled:.1f} | {server} | {client} | {due} | "
            f"{r.client_late_ms:.0f} | {r.drain_s:.1f} | {r.server_cpu:.2f} | "
            f"{r.machine_busy:.0%} |"
        )
    for r in runs:
        if r.closed:
            lines.append(f"\n{r.delivery}: {len(r.closed)} streams closed: {'; '.join(r.closed)}")
    return "\n".join(lines)
