"""`gad bench service`: N concurrent camera streams against a real `gad serve`.

Each stream sends a rendered video's frames as JPEG at the model's fps, paced in real
time (what a camera does), for a fixed duration; the server answers one label per frame.
Measured per N: labels/s, end-to-end latency percentiles (server: arrival → label sent;
client: send → label received), frames dropped or refused. Beside it, the engine alone:
windows/s of head.onnx at batch N, and the service's efficiency = service frames/s ÷
engine windows/s (how much of the engine's capacity the offered load uses).

Server and client share this machine's cores; the client pre-encodes its frames so it
costs little while measuring.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.launch import served
from bench.streams import StreamGroup, Tally, load_frames
from runtime.engine import OnnxEngine
from runtime.errors import GADError
from runtime.manifest import read_package


@dataclass
class StreamsResult(Tally):
    streams: int
    cache: str
    seconds: float

    @property
    def frames_per_s(self) -> float:
        return (self.labels - self.carried) / self.seconds


def run_streams(
    url: str, frames: list[str], fps: float, *, streams: int, seconds: float, cache: str
) -> StreamsResult:
    """`streams` paced streams in step against the server at `url` (ws://HOST:PORT)."""
    result = StreamsResult(streams, cache, seconds)
    urls = [f"{url}/v1/streams/bench-{cache}-{streams}-{i}" for i in range(streams)]

    async def main() -> None:
        group = StreamGroup(urls, frames, result, fps=fps, seconds=seconds, spread=False)
        await group.connect()
        group.start()
        await group.finish()

    asyncio.run(main())
    if result.refused:
        raise GADError(
            f"{result.refused} of {streams} streams could not connect or were closed by the server"
        )
    return result


def engine_windows_per_s(package: Path, batch: int, repeats: int = 20) -> float:
    engine = OnnxEngine.load(package, providers=["cpu"], threads=1)
    spec = engine.package.window
    rng = np.random.default_rng(0)
    features = rng.standard_normal((batch, spec.size, engine.package.feature_dim), np.float32)
    mask = np.ones((batch, spec.size), np.int64)
    engine.classify(features, mask)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        engine.classify(features, mask)
        runs.append(time.perf_counter() - start)
    return batch / statistics.median(runs)


def bench_service(
    package: Path,
    video: Path,
    *,
    streams: list[int],
    seconds: float,
    redis_url: str | None,
    threads: int = 1,
) -> list[tuple[StreamsResult, float]]:
    manifest = read_package(package)
    fps = manifest.fps
    frames = load_frames(video, fps, seconds)
    rows = []
    caches = [("memory", None)] + ([("redis", redis_url)] if redis_url else [])
    for cache, url in caches:
        env = {"GAD_THREADS": str(threads), "GAD_PROVIDERS": "cpu"}
        if url:
            env["GAD_REDIS_URL"] = url
            env["GAD_REDIS_PREFIX"] = f"gad-bench-{int(time.time())}"
        with served(package, env=env, args=["--max-streams", str(max(streams) + 4)]) as server:
            ws_base = server.ws_url
            for n in streams:
                result = run_streams(ws_base, frames, fps, streams=n, seconds=seconds, cache=cache)
                rows.append((result, engine_windows_per_s(package, n)))
    return rows


def render_table(rows: list[tuple[StreamsResult, float]], *, package: Path, cpu: str) -> str:
    manifest = read_package(package)
    lines = [
        f"Model {manifest.name} v{manifest.version} ({manifest.kind}, "
        f"{manifest.encoder_name or 'features'}, "
        f"{manifest.window_text}, {manifest.fps:g} fps); "
        f"JPEG frames paced at {manifest.fps:g} fps per stream; server and client on one "
        f"machine: {cpu}; onnxruntime 1 thread for the encoder and the head each.",
        "",
        "| cache | streams | offered frames/s | labelled frames/s | server p50 / p95 / p99 ms | "
        "client p50 / p95 / p99 ms | dropped | errors | engine windows/s at batch N | "
        "efficiency |",
        "|---|---:|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    for r, engine in rows:
        s = "/".join(f"{r.p(q):.1f}" for q in (50, 95, 99))
        c = "/".join(f"{r.p(q, client=True):.1f}" for q in (50, 95, 99))
        offered = r.streams * manifest.fps
        lines.append(
            f"| {r.cache} | {r.streams} | {offered:.0f} | {r.frames_per_s:.1f} | {s} | {c} | "
            f"{r.dropped} | {r.errors} | {engine:.0f} | {r.frames_per_s / engine:.3f} |"
        )
    return "\n".join(lines)
