"""`gad bench load`: ramp concurrent camera streams over replicas sharing one Redis until
they stop keeping up (`gad bench soak`, the overload held for minutes, is bench/soak.py).

Two `gad serve` replicas (by default) share one Redis (a private `redis-server` on a
free port unless --redis-url is given, so its memory figures are ours alone). Each step
opens N WebSocket streams, round-robin over the replicas, and every stream sends a rendered
video's frames — JPEG, encoded once before measuring — paced at the model's fps, each
stream on its own phase (cameras are not synchronised), for a fixed time, then ends. A step
is sustained in real time when every frame got its label, none was dropped or refused, and
the p99 server latency (frame arrival → label sent) is within the budget. Steps ramp
(4, 8, 16, 32, 48, 64, ...) until one is not sustained, then bisect once or twice: the
knee is the largest N sustained. Per step: latency percentiles, drops, the machine's CPU
use, the replicas' CPU (share of a core) and RSS growth per stream, and Redis's memory
per stream (INFO used_memory growth while the streams are live). Every stream asks for the
same delivery mode (`live` by default, as cameras; bench/delivery.py compares the two on
one overloaded replica).

Loopback only; client, replicas and Redis share this machine's cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from bench.launch import Server, private_redis, served
from bench.streams import StreamGroup, Tally, load_frames
from bench.usage import KiB, MiB, machine_cpu, process_usage, redis_sample
from runtime.errors import GADError
from runtime.manifest import read_package

log = logging.getLogger(__name__)

RAMP = (4, 8, 16, 32, 48, 64, 96, 128, 192, 256)
MAX_STREAMS = 256  # the bench's own bound (file descriptors, one client process)
END_GRACE_S = 15.0  # after the last frame, how long a stream may take to answer the rest


# --- one step: N streams -----------------------------------------------------------------


@dataclass
class Step(Tally):
    """N streams for `seconds`: what they counted, and what the machine spent."""

    streams: int
    replicas: int
    seconds: float
    fps: float
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
    delivery: str = "live",
) -> Step:
    step = Step(streams, len(servers), seconds, fps)
    pids = [s.process.pid for s in servers]

    async def main() -> None:
        urls = [
            f"{servers[i % len(servers)].ws_url}/v1/streams/load-{tag}-{streams}-{i}"
            for i in range(streams)
        ]
        group = StreamGroup(urls, frames, step, fps=fps, seconds=seconds, delivery=delivery)
        await group.connect(timeout=60)
        redis_before = await asyncio.to_thread(redis_sample, redis_url, prefix)
        cpu0 = [process_usage(pid).cpu_s for pid in pids]
        client0, machine0 = process_usage(os.getpid()).cpu_s, machine_cpu()
        wall0 = group.start(delay=0.2)
        # near the end of sending: every stream is live and its window full
        await asyncio.sleep(max(0.0, wall0 - time.monotonic()) + 0.85 * seconds)
        redis_live = await asyncio.to_thread(redis_sample, redis_url, prefix)
        step.server_rss = sum(process_usage(pid).rss for pid in pids)
        await asyncio.sleep(max(0.0, wall0 + seconds - time.monotonic()))
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
        await group.finish(grace=END_GRACE_S)

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
    delivery: str = "live"


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
    delivery: str = "live",
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
        common = {"fps": fps, "redis_url": url, "prefix": prefix, "delivery": delivery}
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
        delivery,
    )


def render_load(result: LoadResult, *, package: Path, cpu: str) -> str:
    manifest = read_package(package)
    budget = result.budget_ms
    lines = [
        f"Model {manifest.name} v{manifest.version} "
        f"({manifest.encoder.name if manifest.encoder else 'features'}, "
        f"{manifest.window_text}, {manifest.fps:g} fps); "
        f"{result.replicas} replicas (`gad serve`, onnxruntime CPU, 1 thread) sharing one "
        f"Redis; JPEG frames paced at {manifest.fps:g} fps per stream ({result.delivery} "
        "delivery), streams round-robin "
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
