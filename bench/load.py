"""`gad bench load`: ramp concurrent camera streams over replicas sharing one Redis until
they stop keeping up; `gad bench soak`: hold an overload for minutes and watch the RSS.

Load. Two `gad serve` replicas (by default) share one Redis (a private `redis-server` on a
free port unless --redis-url is given, so its memory figures are ours alone). Each step
opens N WebSocket streams, round-robin over the replicas, and every stream sends a rendered
video's frames — JPEG, encoded once before measuring — paced at the model's fps, each
stream on its own phase (cameras are not synchronised), for a fixed time, then ends. A step
is sustained in real time when every frame got its label, none was dropped or refused, and
the p99 server latency (frame arrival → label sent) is within the budget. Steps ramp
(4, 8, 16, 32, 48, 64, ...) until one is not sustained, then bisect once or twice: the
knee is the largest N sustained. Per step: latency percentiles, drops, the machine's CPU
use, the replicas' CPU (share of a core) and RSS growth per stream, and Redis's memory
per stream (INFO used_memory growth while the streams are live).

Soak. One replica on Redis, streams sending frames several times faster than it
processes them (the queue drops, counted) for --minutes; the replica's RSS sampled every
10 s. Bounded: the step count, stream count and durations are fixed before it starts.

Loopback only; client, replicas and Redis share this machine's cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.launch import Server, free_port, served
from bench.service import load_frames, percentile
from runtime.errors import GADError
from runtime.manifest import read_package

log = logging.getLogger(__name__)

RAMP = (4, 8, 16, 32, 48, 64, 96, 128, 192, 256)
MAX_STREAMS = 256  # the bench's own bound (file descriptors, one client process)
END_GRACE_S = 15.0  # after the last frame, how long a stream may take to answer the rest
KiB, MiB = 1024, 1 << 20


# --- process and machine counters (psutil when installed, else /proc) ---------------


@dataclass(frozen=True)
class Usage:
    cpu_s: float  # user + system CPU seconds since the process started
    rss: int  # resident bytes now


def process_usage(pid: int) -> Usage:
    try:
        import psutil
    except ImportError:
        return _proc_usage(pid)
    process = psutil.Process(pid)
    times = process.cpu_times()
    return Usage(times.user + times.system, process.memory_info().rss)


def _proc_usage(pid: int) -> Usage:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    ticks = os.sysconf("SC_CLK_TCK")
    cpu_s = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14, 15)
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * KiB
    return Usage(cpu_s, rss)


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, summed over cores."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal
    return (total - idle) / ticks, total / ticks


# --- Redis -----------------------------------------------------------------------------


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """A `redis-server` of our own on a free port (no persistence); its URL."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        raise GADError("no redis-server on PATH: install it (make setup) or pass --redis-url")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="gad-bench-redis-") as folder:
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", folder]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        url = f"redis://127.0.0.1:{port}/0"
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    with redis.Redis.from_url(url, socket_timeout=0.5) as client:
                        client.ping()
                    break
                except redis.RedisError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise GADError(f"redis-server on port {port} did not start") from None
                    time.sleep(0.05)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


@dataclass(frozen=True)
class RedisSample:
    used_memory: int  # INFO memory used_memory
    keys_bytes: int  # MEMORY USAGE of the prefix's keys, summed
    keys: int
    cpu_s: float  # INFO cpu used_cpu_user + used_cpu_sys


def redis_sample(url: str, prefix: str) -> RedisSample:
    import redis

    with redis.Redis.from_url(url, socket_timeout=5) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        keys_bytes = sum(client.memory_usage(key, samples=0) or 0 for key in keys)
        cpu = client.info("cpu")
        return RedisSample(
            int(client.info("memory")["used_memory"]),
            keys_bytes,
            len(keys),
            float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
        )


# --- one step: N streams -----------------------------------------------------------------


@dataclass
class Step:
    streams: int
    replicas: int
    seconds: float
    fps: float
    sent: int = 0
    labels: int = 0
    carried: int = 0
    dropped: int = 0
    errors: int = 0
    refused: int = 0  # streams that could not connect or were closed with a code != 1000
    unanswered: int = 0  # frames without a label, drop or error when the stream ended
    client_late_ms: float = 0.0  # the client's worst lateness against its own schedule
    server_ms: list[float] = field(default_factory=list)
    client_ms: list[float] = field(default_factory=list)
    # resources over the sending phase (CPU) and near its end (memory)
    machine_busy: float = math.nan  # share of all cores busy (everything on the machine)
    server_cpu: float = math.nan  # replicas' CPU, in cores
    client_cpu: float = math.nan  # this process (the clients), in cores
    redis_cpu: float = math.nan
    server_rss: int = 0  # replicas' RSS, summed
    rss_growth: int = 0  # ... minus the idle replicas' RSS before the first step
    redis_growth: int = 0  # used_memory while live minus before the step
    redis_keys_bytes: int = 0

    @property
    def offered(self) -> float:
        return self.streams * self.fps

    def p(self, q: float, client: bool = False) -> float:
        return percentile(self.client_ms if client else self.server_ms, q)

    def other_cpu(self, cores: int) -> float:
        """Cores busy with processes other than the replicas, the client and Redis."""
        return self.machine_busy * cores - self.server_cpu - self.client_cpu - self.redis_cpu

    def verdict(self, budget_ms: float) -> str:
        """'' when sustained in real time, else why not."""
        why = []
        if self.refused:
            why.append(f"{self.refused} streams refused/closed")
        if self.dropped:
            why.append(f"{self.dropped} dropped")
        if self.errors:
            why.append(f"{self.errors} errors")
        if self.unanswered:
            why.append(f"{self.unanswered} unanswered")
        if not self.server_ms or self.p(99) > budget_ms:
            why.append(f"p99 {self.p(99):.0f} ms > {budget_ms:g} ms")
        return ", ".join(why)


async def _stream(
    url: str,
    name: str,
    frames: list[str],
    step: Step,
    go: asyncio.Event,
    start: list[float],
    phase: float,
    ready: asyncio.Event,
    connected: list[int],
) -> None:
    import websockets

    pending: dict[int, float] = {}
    try:
        async with websockets.connect(
            f"{url}/v1/streams/{name}", max_size=1 << 22, open_timeout=30
        ) as ws:
            hello = json.loads(await ws.recv())
            if hello.get("type") != "ready":
                raise GADError(f"expected ready, got {hello}")
            connected[0] += 1
            if connected[0] == step.streams:
                ready.set()
            await go.wait()

            async def send() -> None:
                count = math.ceil(step.seconds * step.fps)
                for seq in range(count):
                    due = start[0] + phase + seq / step.fps
                    delay = due - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    else:
                        step.client_late_ms = max(step.client_late_ms, -delay * 1e3)
                    image = frames[seq % len(frames)]
                    ts = round(seq / step.fps, 6)
                    message = f'{{"type":"frame","seq":{seq},"ts":{ts},"image":"{image}"}}'
                    pending[seq] = time.monotonic()
                    await ws.send(message)
                    step.sent += 1
                await ws.send('{"type":"end"}')

            async def receive() -> None:
                async for raw in ws:
                    message = json.loads(raw)
                    kind = message.get("type")
                    sent = pending.pop(message.get("seq"), None)
                    if kind == "label":
                        step.labels += 1
                        step.carried += bool(message.get("carried"))
                        if not message.get("carried"):
                            step.server_ms.append(message["latency_ms"])
                        if sent is not None:
                            step.client_ms.append((time.monotonic() - sent) * 1e3)
                    elif kind == "dropped":
                        step.dropped += 1
                    elif kind == "error":
                        step.errors += 1
                    elif kind == "end":
                        return

            sender = asyncio.create_task(send())
            try:
                await receive()
                await sender
            finally:
                sender.cancel()
    except (OSError, TimeoutError, GADError, websockets.WebSocketException) as exc:
        code = getattr(getattr(exc, "rcvd", None), "code", None)
        log.debug("stream %s: %s (close code %s)", name, exc, code)
        step.refused += 1
        if not ready.is_set() and connected[0] + step.refused >= step.streams:
            ready.set()
    finally:
        step.unanswered += len(pending)


def run_step(
    servers: list[Server],
    frames: list[str],
    *,
    fps: float,
    streams: int,
    seconds: float,
    redis_url: str,
    prefix: str,
    baseline_rss: int,
    tag: str,
) -> Step:
    step = Step(streams, len(servers), seconds, fps)
    pids = [s.process.pid for s in servers]

    async def main() -> None:
        go, ready = asyncio.Event(), asyncio.Event()
        start, connected = [0.0], [0]
        tasks = [
            asyncio.create_task(
                _stream(
                    servers[i % len(servers)].ws_url,
                    f"load-{tag}-{streams}-{i}",
                    frames,
                    step,
                    go,
                    start,
                    phase=i / streams / fps,  # spread over one frame period
                    ready=ready,
                    connected=connected,
                )
            )
            for i in range(streams)
        ]
        await asyncio.wait_for(ready.wait(), timeout=60)
        redis_before = await asyncio.to_thread(redis_sample, redis_url, prefix)
        cpu0 = [process_usage(pid).cpu_s for pid in pids]
        client0, machine0 = process_usage(os.getpid()).cpu_s, machine_cpu()
        start[0] = time.monotonic() + 0.2
        wall0 = start[0]
        go.set()
        # near the end of sending: every stream is live and its window full
        await asyncio.sleep(max(0.0, start[0] - time.monotonic()) + 0.85 * seconds)
        redis_live = await asyncio.to_thread(redis_sample, redis_url, prefix)
        step.server_rss = sum(process_usage(pid).rss for pid in pids)
        await asyncio.sleep(max(0.0, start[0] + seconds - time.monotonic()))
        wall = time.monotonic() - wall0
        step.server_cpu = sum(process_usage(p).cpu_s - c for p, c in zip(pids, cpu0, strict=True))
        step.server_cpu /= wall
        step.client_cpu = (process_usage(os.getpid()).cpu_s - client0) / wall
        machine1 = machine_cpu()
        step.machine_busy = (machine1[0] - machine0[0]) / max(1e-9, machine1[1] - machine0[1])
        redis_after = await asyncio.to_thread(redis_sample, redis_url, prefix)
        step.redis_cpu = (redis_after.cpu_s - redis_before.cpu_s) / wall
        step.redis_growth = redis_live.used_memory - redis_before.used_memory
        step.redis_keys_bytes = redis_live.keys_bytes - redis_before.keys_bytes
        step.rss_growth = step.server_rss - baseline_rss
        # Streams end once every frame is answered; a server far behind gets END_GRACE_S.
        _, late = await asyncio.wait(tasks, timeout=END_GRACE_S)
        for task in late:
            task.cancel()  # its frames still pending count as unanswered
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    return step


# --- the ramp --------------------------------------------------------------------------


@dataclass
class LoadResult:
    steps: list[Step]
    budget_ms: float
    knee: Step | None  # the largest N sustained
    first_failed: Step | None  # the smallest N not sustained
    baseline_rss: int
    replicas: int
    cores: int


def ramp(max_streams: int, streams: list[int] | None) -> list[int]:
    if streams:
        return sorted(set(streams))
    steps = [n for n in RAMP if n <= max_streams]
    return steps if max_streams in steps else [*steps, max_streams]


def bench_load(
    package: Path,
    video: Path,
    *,
    streams: list[int] | None = None,
    max_streams: int = 96,
    seconds: float = 20.0,
    budget_ms: float = 250.0,
    replicas: int = 2,
    redis_url: str | None = None,
    threads: int = 1,
    refine: int = 2,
) -> LoadResult:
    if not 1 <= max_streams <= MAX_STREAMS or any(not 1 <= n <= MAX_STREAMS for n in streams or []):
        raise GADError(f"streams must be 1..{MAX_STREAMS}, got {max_streams} / {streams}")
    if not 1 <= replicas <= 8 or not 2 <= seconds <= 600:
        raise GADError(f"need 1-8 replicas and 2-600 s per step, got {replicas}, {seconds}")
    manifest = read_package(package)
    fps = manifest.fps
    frames = load_frames(video, fps, min(seconds, 60.0))
    plan = ramp(max_streams, streams)
    per_replica = math.ceil(max(plan) / replicas) + 4
    prefix = f"gad-load-{int(time.time())}"
    with contextlib.ExitStack() as stack:
        url = redis_url or stack.enter_context(private_redis())
        env = {
            "GAD_THREADS": str(threads),
            "GAD_PROVIDERS": "cpu",
            "GAD_REDIS_URL": url,
            "GAD_REDIS_PREFIX": prefix,
            "GAD_LOG_LEVEL": "WARNING",
        }
        args = ["--max-streams", str(per_replica)]
        servers = [
            stack.enter_context(served(package, env=env, args=args)) for _ in range(replicas)
        ]
        common = {"fps": fps, "redis_url": url, "prefix": prefix}
        # Warm-up (not reported): a stream per replica, so arenas and pools exist.
        run_step(servers, frames, streams=replicas, seconds=3, baseline_rss=0, tag="warm", **common)
        time.sleep(1.0)
        baseline = sum(process_usage(s.process.pid).rss for s in servers)
        done: dict[int, Step] = {}

        def measure(n: int) -> Step:
            log.info("load: %d streams for %g s", n, seconds)
            step = run_step(
                servers, frames, streams=n, seconds=seconds, baseline_rss=baseline,
                tag=str(len(done)), **common,
            )  # fmt: skip
            done[n] = step
            verdict = step.verdict(budget_ms) or "sustained"
            log.info("load: %d streams: p99 %.0f ms: %s", n, step.p(99), verdict)
            time.sleep(1.0)  # let closed streams' state go
            return step

        passed, failed = 0, None
        for n in plan:  # a given list runs whole; the ramp stops at its first failure
            if measure(n).verdict(budget_ms):
                failed = n if failed is None else failed
                if not streams:
                    break
            elif failed is None:
                passed = n
        for _ in range(refine if not streams else 0):
            if failed is None or failed - passed <= max(2, passed // 8):
                break
            mid = (passed + failed) // 2
            if measure(mid).verdict(budget_ms):
                failed = mid
            else:
                passed = mid
    steps = [done[n] for n in sorted(done)]
    return LoadResult(
        steps,
        budget_ms,
        done.get(passed),
        done.get(failed) if failed is not None else None,
        baseline,
        replicas,
        os.cpu_count() or 1,
    )


def render_load(result: LoadResult, *, package: Path, cpu: str) -> str:
    manifest = read_package(package)
    budget = result.budget_ms
    lines = [
        f"Model {manifest.name} v{manifest.version} "
        f"({manifest.encoder['name'] if manifest.encoder else 'features'}, window "
        f"{manifest.window.long_frames}+{manifest.window.short_frames}, {manifest.fps:g} fps); "
        f"{result.replicas} replicas (`gad serve`, onnxruntime CPU, 1 thread) sharing one "
        f"Redis; JPEG frames paced at {manifest.fps:g} fps per stream, streams round-robin "
        f"over the replicas; {result.steps[0].seconds:g} s per step; client, replicas and "
        f"Redis on one machine: {cpu}, {result.cores} cores. Budget: p99 server latency "
        f"≤ {budget:g} ms, no drop, no error, every frame answered.",
        "",
        "| streams | offered frames/s | labelled frames/s | server p50 / p95 / p99 ms | "
        "client p50 / p95 / p99 ms | dropped | errors + refused + unanswered | machine CPU "
        "(other processes, cores) | "
        "replicas' CPU (cores) | CPU per stream (% of a core) | replicas' RSS MiB "
        "(growth per stream KiB) | Redis per stream KiB | real time |",
        "|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for s in result.steps:
        server = " / ".join(f"{s.p(q):.0f}" for q in (50, 95, 99))
        client = " / ".join(f"{s.p(q, client=True):.0f}" for q in (50, 95, 99))
        labelled = (s.labels - s.carried) / s.seconds
        verdict = s.verdict(budget)
        lines.append(
            f"| {s.streams} | {s.offered:.0f} | {labelled:.1f} | {server} | {client} | "
            f"{s.dropped} | {s.errors + s.refused + s.unanswered} | {s.machine_busy:.0%} "
            f"({s.other_cpu(result.cores):.2f}) | "
            f"{s.server_cpu:.2f} | {100 * s.server_cpu / s.streams:.1f} | "
            f"{s.server_rss / MiB:.0f} ({s.rss_growth / s.streams / KiB:.0f}) | "
            f"{s.redis_growth / s.streams / KiB:.0f} | {'no: ' + verdict if verdict else 'yes'} |"
        )
    lines += ["", knee_summary(result)]
    return "\n".join(lines)


def knee_summary(result: LoadResult) -> str:
    knee, over = result.knee, result.first_failed
    if knee is None:
        return "No step was sustained in real time."
    text = (
        f"Knee: {knee.streams} streams sustained in real time ({knee.offered:.0f} frames/s), "
        f"p99 server latency {knee.p(99):.0f} ms (client {knee.p(99, client=True):.0f} ms); "
        f"replicas {100 * knee.server_cpu / knee.streams:.1f} % of a core per stream, RSS "
        f"{knee.server_rss / MiB:.0f} MiB for both ({knee.rss_growth / knee.streams / KiB:.0f} "
        "KiB per stream over idle), Redis "
        f"{knee.redis_growth / knee.streams / KiB:.0f} KiB per stream "
        f"(its keys alone: {knee.redis_keys_bytes / knee.streams / KiB:.0f} KiB)."
    )
    if over is None:
        return text + " Every step up to the largest tried was sustained."
    cores = result.cores
    busy = over.machine_busy
    limit = (
        f"CPU: the machine's {cores} cores were {busy:.0%} busy (replicas "
        f"{over.server_cpu:.2f}, client {over.client_cpu:.2f}, Redis {over.redis_cpu:.2f}, "
        f"other processes {over.other_cpu(cores):.2f} cores)"
        if busy >= 0.85
        else f"not CPU (machine {busy:.0%} busy): latency/queueing in the replicas"
    )
    return (
        f"{text} At {over.streams} streams: {over.verdict(result.budget_ms)}. "
        f"Limiting resource: {limit}."
    )


# --- soak --------------------------------------------------------------------------------


@dataclass
class SoakResult:
    minutes: float
    streams: int
    rate: float  # frames/s sent per stream
    samples: list[tuple[float, int, int]]  # (seconds since start, RSS, Redis used_memory)
    sent: int = 0
    labels: int = 0
    dropped: int = 0
    errors: int = 0
    closed: int = 0  # streams closed by the server with a code != 1000

    @property
    def unanswered(self) -> int:
        return self.sent - self.labels - self.dropped - self.errors

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
    on_sample=None,
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
    server: Server, redis_url: str, frames, fps: float, result: SoakResult, every_s, on_sample
):
    import redis
    import websockets

    deadline = time.monotonic() + result.minutes * 60
    started = time.monotonic()

    async def one(i: int) -> None:
        # Timestamps advance at the model's fps (every frame is a new row to process),
        # frames go out at `rate`: the server gets rate / fps times more work than real time.
        seq = 0
        while time.monotonic() < deadline:  # reconnect if the server closes the stream
            try:
                async with websockets.connect(
                    f"{server.ws_url}/v1/streams/soak-{i}", max_size=1 << 22
                ) as ws:
                    seq = int(json.loads(await ws.recv()).get("next_seq", seq))

                    async def send() -> None:
                        nonlocal seq
                        while time.monotonic() < deadline:
                            image = frames[seq % len(frames)]
                            ts = round(seq / fps, 6)
                            await ws.send(
                                f'{{"type":"frame","seq":{seq},"ts":{ts},"image":"{image}"}}'
                            )
                            result.sent += 1
                            seq += 1
                            await asyncio.sleep(1 / result.rate)
                        await ws.send('{"type":"end"}')

                    sender = asyncio.create_task(send())
                    try:
                        async for raw in ws:
                            kind = json.loads(raw).get("type")
                            result.labels += kind == "label"
                            result.dropped += kind == "dropped"
                            result.errors += kind == "error"
                            if kind == "end":
                                break
                        await sender
                    finally:
                        sender.cancel()
            except (OSError, websockets.WebSocketException):
                result.closed += 1
                await asyncio.sleep(1.0)

    def used_memory() -> int:
        with redis.Redis.from_url(redis_url, socket_timeout=5) as client:
            return int(client.info("memory")["used_memory"])

    async def sample() -> None:
        while True:
            rss = process_usage(server.process.pid).rss
            at = time.monotonic() - started
            result.samples.append((at, rss, await asyncio.to_thread(used_memory)))
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
            f"{result.unanswered} unanswered, {result.closed} streams closed by the server.",
            f"Server RSS MiB every {every:.0f} s: {' '.join(f'{r:.1f}' for r in rss)}",
            f"Redis used_memory MiB: {' '.join(f'{u:.2f}' for u in used)}",
            f"RSS first {rss[0]:.1f} MiB, min {rss.min():.1f}, max {rss.max():.1f}, last "
            f"{rss[-1]:.1f}; growth {total / MiB:+.1f} MiB over the run, "
            f"{settled / MiB:+.1f} MiB after the first 10 % (trend {slope / MiB:+.2f} MiB/min).",
        ]
    )
