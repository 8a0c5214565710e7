"""`gad bench soak`: hold an overload for minutes against one replica and watch its RSS.

One replica on Redis (a private `redis-server` on a free port unless --redis-url is given),
streams sending frames several times faster than it processes them (the queue drops,
counted) for --minutes; the replica's RSS and Redis's used_memory sampled every 10 s.
Bounded: the stream count, rate and duration are fixed before it starts. A stream the
server closes reconnects and resumes at the server's next seq.

Loopback only; client, replica and Redis share this machine's cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.launch import Server, private_redis, served
from bench.streams import Tally, load_frames, play
from bench.usage import MiB, process_usage, redis_used_memory
from runtime.errors import GADError
from runtime.manifest import read_package
from service.client import open_stream


@dataclass
class SoakResult(Tally):
    minutes: float
    streams: int
    rate: float  # frames/s sent per stream
    samples: list[tuple[float, int, int]]  # (seconds since start, RSS, Redis used_memory)

    def growth(self) -> tuple[int, int, float]:
        """RSS: last - first sample, last - the sample at 10 % of the run (bytes), and the
        least-squares slope over the last 90 % (bytes per minute)."""
        rss = [r for _, r, _ in self.samples]
        start = max(1, len(rss) // 10) if len(rss) > 2 else 0
        t = np.array([at for at, _, _ in self.samples[start:]]) / 60
        slope = float(np.polyfit(t, rss[start:], 1)[0]) if len(t) > 2 else math.nan
        return rss[-1] - rss[0], rss[-1] - rss[start], slope


def soak(
    package: Path,
    video: Path,
    *,
    minutes: float = 10.0,
    streams: int = 8,
    rate: float = 40.0,
    every_s: float = 10.0,
    queue_depth: int = 8,
    redis_url: str | None = None,
    on_sample: Callable[[float, int, SoakResult], None] | None = None,
) -> SoakResult:
    """Stream at overload for `minutes` against one replica on Redis; sample its RSS."""
    if not 0 < minutes <= 120 or not 1 <= streams <= 64 or not 0 < rate <= 500:
        raise GADError(f"soak: 0-120 minutes, 1-64 streams, 0-500 fps; got {minutes}, {streams}")
    fps = read_package(package).fps
    frames = load_frames(video, fps, 60.0)
    result = SoakResult(minutes, streams, rate, [])
    with contextlib.ExitStack() as stack:
        url = redis_url or stack.enter_context(private_redis())
        env = {
            "GAD_THREADS": "1",
            "GAD_PROVIDERS": "cpu",
            "GAD_REDIS_URL": url,
            "GAD_REDIS_PREFIX": f"gad-soak-{int(time.time())}",
            "GAD_QUEUE_DEPTH": str(queue_depth),
            "GAD_LOG_LEVEL": "WARNING",
        }
        server = stack.enter_context(served(package, env=env))
        asyncio.run(_soak(server, url, frames, fps, result, every_s, on_sample))
    return result


async def _soak(
    server: Server,
    redis_url: str,
    frames: list[str],
    fps: float,
    result: SoakResult,
    every_s: float,
    on_sample: Callable[[float, int, SoakResult], None] | None,
) -> None:
    import websockets

    deadline = time.monotonic() + result.minutes * 60
    started = time.monotonic()

    async def one(i: int) -> None:
        # Timestamps advance at the model's fps (every frame is a new row to process),
        # frames go out at `rate`: the server gets rate / fps times more work than real time.
        while time.monotonic() < deadline:  # reconnect if the server closes the stream
            stream = None
            try:
                url = f"{server.ws_url}/v1/streams/soak-{i}"
                async with open_stream(url, max_size=1 << 22) as stream:
                    first = int(stream.ready.get("next_seq", 0))
                    start = time.monotonic()
                    await play(
                        stream, frames, result, fps=fps, start=start, until=deadline,
                        rate=result.rate, first_seq=first,
                    )  # fmt: skip
            except (OSError, GADError, websockets.WebSocketException):
                result.refused += 1
                await asyncio.sleep(1.0)
            finally:
                if stream is not None:
                    result.unanswered += len(stream.pending)

    async def sample() -> None:
        while True:
            rss = process_usage(server.process.pid).rss
            at = time.monotonic() - started
            result.samples.append((at, rss, await asyncio.to_thread(redis_used_memory, redis_url)))
            if on_sample is not None:
                on_sample(at, rss, result)
            if time.monotonic() + every_s > deadline + 1:
                return
            await asyncio.sleep(every_s)

    sampler = asyncio.create_task(sample())
    await asyncio.gather(*(one(i) for i in range(result.streams)))
    await sampler


def render_soak(result: SoakResult) -> str:
    rss = np.array([r for _, r, _ in result.samples], float) / MiB
    used = np.array([u for _, _, u in result.samples], float) / MiB
    total, settled, slope = result.growth()
    every = result.samples[1][0] - result.samples[0][0] if len(rss) > 1 else 0.0
    return "\n".join(
        [
            f"Soak: {result.minutes:g} min, one replica on Redis, {result.streams} streams "
            f"each sending {result.rate:g} frames/s of new rows ({result.rate * result.streams:g} "
            f"frames/s offered); {result.sent} frames sent, {result.labels} labelled, "
            f"{result.dropped} dropped (each reported and counted), {result.errors} errors, "
            f"{result.unanswered} unanswered, {result.refused} streams closed by the server.",
            f"Server RSS MiB every {every:.0f} s: {' '.join(f'{r:.1f}' for r in rss)}",
            f"Redis used_memory MiB: {' '.join(f'{u:.2f}' for u in used)}",
            f"RSS first {rss[0]:.1f} MiB, min {rss.min():.1f}, max {rss.max():.1f}, last "
            f"{rss[-1]:.1f}; growth {total / MiB:+.1f} MiB over the run, "
            f"{settled / MiB:+.1f} MiB after the first 10 % (trend {slope / MiB:+.2f} MiB/min).",
        ]
    )
