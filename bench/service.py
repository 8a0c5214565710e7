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
import base64
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.launch import served
from runtime.engine import OnnxEngine
from runtime.manifest import read_package
from runtime.video import read_frames
from service.client import encode_frame


@dataclass
class StreamsResult:
    streams: int
    cache: str
    seconds: float
    sent: int = 0
    labels: int = 0
    carried: int = 0
    dropped: int = 0
    errors: int = 0
    server_ms: list[float] = field(default_factory=list)
    client_ms: list[float] = field(default_factory=list)

    @property
    def frames_per_s(self) -> float:
        return (self.labels - self.carried) / self.seconds


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def load_frames(video: Path, fps: float, seconds: float) -> list[str]:
    frames = []
    for frame in read_frames(video, fps):
        if frame.t >= seconds:
            break
        frames.append(base64.b64encode(encode_frame(frame.rgb, "jpeg", 85)).decode())
    return frames


async def _one_stream(
    url: str, name: str, frames: list[str], fps: float, seconds: float, result: StreamsResult
) -> None:
    import websockets

    sent_at: dict[int, float] = {}
    async with websockets.connect(f"{url}/v1/streams/{name}", max_size=1 << 24) as ws:
        await ws.recv()  # ready

        async def send() -> None:
            start = time.monotonic()
            seq = 0
            while (now := time.monotonic() - start) < seconds:
                await asyncio.sleep(max(0.0, seq / fps - now))
                message = {
                    "type": "frame",
                    "seq": seq,
                    "ts": seq / fps,
                    "image": frames[seq % len(frames)],
                }
                sent_at[seq] = time.monotonic()
                await ws.send(json.dumps(message))
                result.sent += 1
                seq += 1
            await ws.send(json.dumps({"type": "end"}))

        async def receive() -> None:
            async for raw in ws:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "label":
                    result.labels += 1
                    result.carried += bool(message.get("carried"))
                    if not message.get("carried"):
                        result.server_ms.append(message["latency_ms"])
                    if message["seq"] in sent_at:
                        result.client_ms.append(
                            (time.monotonic() - sent_at.pop(message["seq"])) * 1e3
                        )
                elif kind == "dropped":
                    result.dropped += 1
                elif kind == "error":
                    result.errors += 1
                elif kind == "end":
                    return

        await asyncio.gather(send(), receive())


def run_streams(
    url: str, frames: list[str], fps: float, *, streams: int, seconds: float, cache: str
) -> StreamsResult:
    result = StreamsResult(streams, cache, seconds)

    async def main() -> None:
        await asyncio.gather(
            *(
                _one_stream(url, f"bench-{cache}-{streams}-{i}", frames, fps, seconds, result)
                for i in range(streams)
            )
        )

    asyncio.run(main())
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
        f"Model {manifest.name} v{manifest.version} ({manifest.manifest['kind']}, "
        f"{manifest.encoder['name'] if manifest.encoder else 'features'}, window "
        f"{manifest.window.long_frames}+{manifest.window.short_frames}, {manifest.fps:g} fps); "
        f"JPEG frames paced at {manifest.fps:g} fps per stream; server and client on one "
        f"machine: {cpu}; onnxruntime 1 thread for the encoder and the head each.",
        "",
        "| cache | streams | offered frames/s | labelled frames/s | server p50 / p95 / p99 ms | "
        "client p50 / p95 / p99 ms | dropped | errors | engine windows/s at batch N | "
        "efficiency |",
        "|---|---:|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    for r, engine in rows:
        s = "/".join(f"{percentile(r.server_ms, q):.1f}" for q in (50, 95, 99))
        c = "/".join(f"{percentile(r.client_ms, q):.1f}" for q in (50, 95, 99))
        offered = r.streams * manifest.fps
        lines.append(
            f"| {r.cache} | {r.streams} | {offered:.0f} | {r.frames_per_s:.1f} | {s} | {c} | "
            f"{r.dropped} | {r.errors} | {engine:.0f} | {r.frames_per_s / engine:.3f} |"
        )
    return "\n".join(lines)
