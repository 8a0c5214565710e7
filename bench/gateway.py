"""`gad bench gateway`: N RTSP cameras → one `gad gateway` → two `gad serve` replicas
sharing Redis → action events on a Redis stream. How many cameras one gateway holds in real
time on this machine, what it spends per camera, and how long an action takes from the
camera to the event stream.

Per N (`--cameras 2 4 8 ...`), in order:

1. GStreamer's RTSP server (bench/rtsp.py) serves N paths, cam0 … camN-1, each playing the
   video from its start for each session, in real time. The video is looped to outlast the
   step and encoded once, before any step, as H.264 with a key frame every second; the
   server sends it as it is (no per-camera encoding on this machine: a camera encodes on its
   own chip), so what it spends stays small (its CPU is a column). The gateway opens its
   cameras together and each plays the clip from its start: their frames and actions come
   on one beat, the replicas' worst case (`gad bench load` staggers its streams instead).
2. `gad gateway` runs a generated YAML of the N cameras at the model's fps, round-robin
   over the replicas (`service:` per camera), `/metrics` and `/healthz` on a free port.
3. Once every camera has its first label, `warmup` seconds pass, then `seconds` are
   measured: the gateway's `/metrics` (labels, drops by reason, reconnects, the round-trip
   histogram) before and after, the CPU time of every process involved (/proc or psutil),
   each stream's lag every second, and every event as a blocking XREAD returns it.

The replicas (started once, for every N) publish their events to a Redis stream
(`GAD_EVENT_SINKS=redis://…?key=…`) on the Redis that holds their feature cache (a private
`redis-server` unless --redis-url is given).

**Lag** of a stream, sampled every second: now − the capture time of the newest row the
service stored for it (`last_ts` in the stream's state in Redis, on the camera's clock):
how far behind the camera the labels are, including up to one frame period of waiting.

**Event latency**: from the capture of the frame that decided the event to the event's
entry in the Redis stream. The second end is the entry's id, which Redis stamps with its
own clock (milliseconds) when the sink's XADD runs. The first end: the event names its rows
(`start_row`, `end_row`), the stream's state its time origin (`t0`, the first sampled
frame's timestamp); the deciding row is `end_row − 1` for `started`, `end_row + max_gap`
for `ended` by a gap and the next segment's `started` row for `ended` by the `next` action;
its frame was captured at `t0 + ⌈row · camera fps / model fps⌉ / camera fps` (the sampler
takes the first frame in each slot). A frame's timestamp is the gateway's: the wall time
at which it decoded the connection's first frame plus the stream's presentation time since,
so a gateway that decodes late shows as latency. All clocks are this machine's.

A camera is **held in real time** when, over the measured seconds, it got at least 95 % of
the labels its fps asks for, its lag did not grow (the median of the last third of the
samples minus the first third's ≤ 0.5 s) and neither side reconnected. The knee is the
largest N at which every camera was held.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from bench.launch import Server, free_port, private_redis, served, stop
from bench.rtsp import SETUP_HINT, RtspServer, rtsp_available
from bench.streams import percentile
from bench.usage import MiB, machine_cpu, process_usage
from runtime.errors import GADError
from runtime.manifest import read_package
from runtime.segments import DISPLAY_RULE

log = logging.getLogger(__name__)

MIN_RATE = 0.95  # of the labels the fps asks for
MAX_LAG_GROWTH_S = 0.5
SAMPLE_EVERY_S = (0.6, 1.0)  # lag samples a random 0.6-1 s apart (never on the frames' beat)
MAX_CAMERAS = 64
# the fields every entry of the event stream carries, and every event's JSON (service/wire.py)
ENTRY_FIELDS = frozenset({"id", "event", "stream", "tenant", "label", "data"})
EVENT_FIELDS = frozenset(
    {"type", "event", "id", "segment", "stream", "label", "start", "end", "start_row",
     "end_row", "frames", "peak", "mean", "model", "at"}
)  # fmt: skip


# --- the camera clip --------------------------------------------------------------------------


def camera_clip(
    video: Path, seconds: float, out: Path, *, size: tuple[int, int] | None = None
) -> tuple[Path, float, tuple[int, int]]:
    """`video` looped to at least `seconds`, encoded as H.264 in MP4 at its own fps with a
    key frame every second and no B-frames (what a camera sends), resized to `size` (width,
    height) if given; the file, its fps and its size."""
    import av
    import cv2

    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    capture.release()
    rate = Fraction(fps).limit_denominator(1001)
    total = math.ceil(seconds * fps)
    written = 0
    with av.open(str(out), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 800_000
        stream.codec_context.gop_size = max(1, round(fps))
        stream.codec_context.max_b_frames = 0
        stream.options = {"preset": "ultrafast", "tune": "zerolatency"}
        while written < total:
            capture = cv2.VideoCapture(str(video))
            looped = written
            while written < total:
                ok, bgr = capture.read()
                if not ok:
                    break
                if size is not None:
                    bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR)
                if written == 0:
                    stream.width, stream.height = bgr.shape[1] & ~1, bgr.shape[0] & ~1
                frame = av.VideoFrame.from_ndarray(
                    bgr[: stream.height, : stream.width], format="bgr24"
                )
                frame.pts, frame.time_base = written, 1 / rate
                container.mux(stream.encode(frame))
                written += 1
            capture.release()
            if written == looped:
                raise GADError(f"no frames in {video}")
        container.mux(stream.encode(None))
        shape = (stream.width, stream.height)
    return out, float(fps), shape


# --- what is read off the gateway ---------------------------------------------------------------


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """A Prometheus endpoint's samples: (name, labels) → value."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """The sum over samples of `name` that carry `labels`, after minus before."""
    want = set(labels.items())

    def total(samples: Samples) -> float:
        return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)

    return total(after) - total(before)


def histogram_quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Prometheus's estimate: the q-quantile of cumulative (upper bound, count) buckets,
    linear within the bucket it falls in. NaN without observations."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower
            inside = count - below
            return lower + (upper - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = upper, count
    return lower


def round_trip_buckets(before: Samples, after: Samples) -> list[tuple[float, float]]:
    """The round-trip histogram over every camera, after minus before."""
    name = "gad_gateway_round_trip_seconds_bucket"
    bounds = {dict(ls)["le"] for (n, ls) in after if n == name}
    return [(float(le), _delta(before, after, name, le=le)) for le in bounds]


def health(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        return dict(json.loads(response.read()))


# --- figures ------------------------------------------------------------------------------------


@dataclass
class CameraFigures:
    id: str
    stream: str
    service: str  # the replica it streams to
    labels: int = 0  # in the measured seconds
    rate: float = 0.0  # labels per second
    dropped: dict[str, int] = field(default_factory=dict)  # at the gateway, by reason
    reconnects: dict[str, int] = field(default_factory=dict)  # by side
    lags: list[float] = field(default_factory=list)  # seconds, one a second
    lag_growth: float = math.nan
    t0_moved: bool = False  # the stream's time origin changed (a resync): timings unsure
    events: int = 0  # its events in the Redis stream, in the measured seconds

    def verdict(self, fps: float) -> str:
        """'' when held in real time, else why not."""
        why = []
        if self.rate < MIN_RATE * fps:
            why.append(f"{self.rate:.2f} labels/s < {MIN_RATE:.0%} of {fps:g}")
        if not self.lag_growth <= MAX_LAG_GROWTH_S:
            why.append(f"lag grew {self.lag_growth:.2f} s")
        if sum(self.reconnects.values()):
            why.append(f"reconnected ({', '.join(f'{k} {v}' for k, v in self.reconnects.items())})")
        return ", ".join(why)


@dataclass(frozen=True)
class EventTiming:
    id: str
    stream: str
    event: str  # started | ended
    reason: str  # ended: gap | next | end
    capture: float | None  # capture time of the frame that decided it (None: not known)
    decided: float  # the event's `at`: the service decided it (its clock)
    published: float  # the entry's id: Redis appended it (its clock)
    received: float  # the bench's XREAD returned it

    @property
    def latency(self) -> float | None:
        return None if self.capture is None else self.published - self.capture


@dataclass
class GatewayStep:
    cameras: int
    seconds: float
    fps: float
    camera_fps: float
    cameras_figures: list[CameraFigures]
    events: list[EventTiming] = field(default_factory=list)
    events_malformed: int = 0  # entries without the expected fields
    gateway_cpu: float = math.nan  # cores
    gateway_rss: int = 0
    replicas_cpu: float = math.nan  # cores, both
    rtsp_cpu: float = math.nan
    redis_cpu: float = math.nan
    bench_cpu: float = math.nan  # this process: the sampler and the XREAD reader
    machine_busy: float = math.nan  # share of all cores
    round_trip: list[tuple[float, float]] = field(default_factory=list)  # histogram buckets
    dropped: dict[str, int] = field(default_factory=dict)  # all cameras, by reason
    first_label_s: float = math.nan  # gateway start → every camera labelled

    def held(self) -> list[CameraFigures]:
        return [c for c in self.cameras_figures if not c.verdict(self.fps)]

    def verdict(self) -> str:
        bad = [c for c in self.cameras_figures if c.verdict(self.fps)]
        if not bad:
            return ""
        worst = bad[0]
        return f"{len(bad)} of {self.cameras} not held ({worst.id}: {worst.verdict(self.fps)})"

    def other_cpu(self, cores: int) -> float:
        ours = self.gateway_cpu + self.replicas_cpu + self.rtsp_cpu + self.redis_cpu
        return self.machine_busy * cores - ours - self.bench_cpu

    def latencies(self) -> list[float]:
        return [e.latency for e in self.events if e.latency is not None]

    def rt_ms(self, q: float) -> float:
        return 1e3 * histogram_quantile(self.round_trip, q / 100)

    def lags(self) -> list[float]:
        return [lag for c in self.cameras_figures for lag in c.lags]

    def as_dict(self) -> dict[str, Any]:
        latencies = self.latencies()
        return {
            "cameras": self.cameras,
            "seconds": self.seconds,
            "fps": self.fps,
            "held": len(self.held()),
            "real_time": not self.verdict(),
            "verdict": self.verdict(),
            "labels_per_camera_s": {
                "min": min(c.rate for c in self.cameras_figures),
                "mean": statistics.fmean(c.rate for c in self.cameras_figures),
            },
            "lag_s": {
                "p50": percentile(self.lags(), 50),
                "max": max(self.lags(), default=math.nan),
                "growth_max": max(c.lag_growth for c in self.cameras_figures),
            },
            "dropped_at_gateway": self.dropped,
            "round_trip_ms": {"p50": self.rt_ms(50), "p99": self.rt_ms(99)},
            "events": len(self.events),
            "events_timed": len(latencies),
            "events_malformed": self.events_malformed,
            "event_latency_ms": {
                "p50": 1e3 * percentile(latencies, 50),
                "p99": 1e3 * percentile(latencies, 99),
                "decided_to_redis_p50": 1e3
                * percentile([e.published - e.decided for e in self.events], 50),
                "redis_to_xread_p50": 1e3
                * percentile([e.received - e.published for e in self.events], 50),
            },
            "cpu_cores": {
                "gateway": self.gateway_cpu,
                "gateway_per_camera": self.gateway_cpu / self.cameras,
                "replicas": self.replicas_cpu,
                "rtsp_server": self.rtsp_cpu,
                "redis": self.redis_cpu,
                "bench": self.bench_cpu,
                "machine_busy_share": self.machine_busy,
            },
            "gateway_rss_mib": self.gateway_rss / MiB,
            "first_label_s": self.first_label_s,
            "event_timings": [
                asdict(e) | {"latency_ms": None if e.latency is None else 1e3 * e.latency}
                for e in self.events
            ],
            "per_camera": [
                asdict(c) | {"verdict": c.verdict(self.fps)} for c in self.cameras_figures
            ],
        }


# --- one step ---------------------------------------------------------------------------------


class _Watch:
    """Threads beside a step: every event as XREAD returns it, every stream's lag."""

    def __init__(self, redis_url: str, prefix: str, events_key: str, streams: list[str]) -> None:
        import redis

        from service.cache.redis import stream_keys

        self.client = redis.Redis.from_url(redis_url, socket_timeout=5)
        self.events_key = events_key
        self.meta_keys = {s: stream_keys(prefix, s)[1] for s in streams}
        self.entries: list[tuple[str, dict[str, str], float]] = []  # (id, fields, received)
        self.lags: dict[str, list[tuple[float, float]]] = defaultdict(list)  # (when, lag)
        self.measuring = False
        self._stop = threading.Event()
        self._last_id = f"{int(time.time() * 1000)}-0"
        self._threads = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._sample, daemon=True),
        ]

    def __enter__(self) -> _Watch:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.client.close()

    def _read(self) -> None:
        while not self._stop.is_set():
            reply = self.client.xread({self.events_key: self._last_id}, count=500, block=200)
            received = time.time()
            for _key, entries in reply or []:
                for entry_id, fields in entries:
                    self._last_id = entry_id.decode()
                    decoded = {k.decode(): v.decode() for k, v in fields.items()}
                    self.entries.append((self._last_id, decoded, received))

    def clocks(self) -> dict[str, dict[str, Any]]:
        """Each stream's stored meta (t0, last_ts, ...); {} for one not stored yet."""
        with self.client.pipeline(transaction=False) as pipe:
            for key in self.meta_keys.values():
                pipe.hget(key, "meta")
            replies = pipe.execute()
        return {
            stream: json.loads(raw) if raw else {}
            for stream, raw in zip(self.meta_keys, replies, strict=True)
        }

    def _sample(self) -> None:
        while not self._stop.wait(random.uniform(*SAMPLE_EVERY_S)):
            if not self.measuring:
                continue
            now = time.time()
            for stream, meta in self.clocks().items():
                if "last_ts" in meta:
                    self.lags[stream].append((now, now - float(meta["last_ts"])))


def _lag_growth(samples: list[float]) -> float:
    if len(samples) < 3:
        return math.nan
    third = max(1, len(samples) // 3)
    return statistics.median(samples[-third:]) - statistics.median(samples[:third])


def _capture_time(row: int, t0: float, fps: float, camera_fps: float) -> float:
    """Capture time of the frame the sampler took for `row`: the first camera frame at or
    after the row's slot (the camera's frames lie on t0 + k / camera_fps)."""
    return t0 + math.ceil(row * camera_fps / fps - 1e-6) / camera_fps


def time_events(
    entries: list[tuple[str, dict[str, str], float]],
    t0s: dict[str, float],
    *,
    fps: float,
    camera_fps: float,
    max_gap: int,
) -> tuple[list[EventTiming], int]:
    """Each well-formed entry's timings, and how many entries were not well-formed."""
    events: list[tuple[str, dict[str, Any], float]] = []
    malformed = 0
    for entry_id, fields, received in entries:
        try:
            data = json.loads(fields["data"])
            if not set(fields) >= ENTRY_FIELDS or not set(data) >= EVENT_FIELDS:
                raise KeyError(sorted((ENTRY_FIELDS - set(fields)) | (EVENT_FIELDS - set(data))))
            if data["id"] != fields["id"] or data["stream"] != fields["stream"]:
                raise ValueError("the entry's fields and its data disagree")
        except (KeyError, ValueError):
            malformed += 1
            continue
        events.append((entry_id, data, received))
    started_rows: dict[str, list[tuple[int, int]]] = defaultdict(list)  # (start_row, decided)
    for _, data, _ in events:
        if data["event"] == "started":
            started_rows[data["stream"]].append((data["start_row"], data["end_row"] - 1))
    timings = []
    for entry_id, data, received in events:
        stream, kind, reason = data["stream"], data["event"], data.get("reason", "")
        row: int | None = None
        if kind == "started":
            row = data["end_row"] - 1
        elif reason == "gap":
            row = data["end_row"] + max_gap
        elif reason == "next":  # decided by the next segment's start
            after = [d for s, d in sorted(started_rows[stream]) if s >= data["end_row"]]
            row = after[0] if after else None
        t0 = t0s.get(stream)
        capture = None if row is None or t0 is None else _capture_time(row, t0, fps, camera_fps)
        published = int(entry_id.split("-")[0]) / 1e3
        timings.append(
            EventTiming(
                data["id"], stream, kind, reason, capture, float(data["at"]), published, received
            )
        )
    return timings, malformed


@contextlib.contextmanager
def gateway_process(config: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """`gad gateway CONFIG`, once its /healthz answers; stopped (SIGTERM) on exit."""
    log_path = config.with_suffix(".log")
    command = [sys.executable, "-m", "gad.cli", "gateway", str(config), "--log-level", "INFO"]
    with log_path.open("wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health(port)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise GADError(
                        f"gad gateway did not start:\n{log_path.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.2)
        yield process
    finally:
        stop(process, timeout=15)


def gateway_config(
    path: Path,
    *,
    rtsp: RtspServer,
    servers: list[Server],
    streams: list[str],
    fps: float,
    port: int,
) -> Path:
    import yaml

    cameras = [
        {
            "id": f"cam{i}",
            "source": rtsp.url(i),
            "stream": stream,
            "service": servers[i % len(servers)].ws_url,
        }
        for i, stream in enumerate(streams)
    ]
    config = {
        "service": servers[0].ws_url,
        "listen": f"127.0.0.1:{port}",
        "defaults": {"fps": fps},
        "cameras": cameras,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_step(
    n: int,
    *,
    clip: Path,
    camera_fps: float,
    servers: list[Server],
    fps: float,
    seconds: float,
    warmup: float,
    redis_url: str,
    prefix: str,
    events_key: str,
    folder: Path,
    tag: str,
) -> GatewayStep:
    import redis

    streams = [f"bench-gw-{tag}-{n}-{i}" for i in range(n)]
    step = GatewayStep(
        n, seconds, fps, camera_fps,
        [CameraFigures(f"cam{i}", s, servers[i % len(servers)].url) for i, s in enumerate(streams)],
    )  # fmt: skip
    rtsp = RtspServer([clip] * n, h264=True).start()
    port = free_port()
    config = gateway_config(
        folder / f"gateway-{n}.yaml", rtsp=rtsp, servers=servers, streams=streams, fps=fps,
        port=port,
    )  # fmt: skip
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    try:
        with (
            _Watch(redis_url, prefix, events_key, streams) as watch,
            gateway_process(config, port) as gateway,
        ):
            started = time.monotonic()
            deadline = started + 30 + n
            while time.monotonic() < deadline:
                cameras = health(port)["cameras"]
                if all(c["labels"] > 0 for c in cameras.values()):
                    step.first_label_s = time.monotonic() - started
                    break
                time.sleep(0.25)
            else:
                log.warning("gateway: not every camera labelled %.0f s in", 30 + n)
            time.sleep(warmup)
            t0s_before = {s: m.get("t0") for s, m in watch.clocks().items()}
            pids = [s.process.pid for s in servers]
            assert rtsp.process is not None
            rtsp_pid = rtsp.process.pid
            client = redis.Redis.from_url(redis_url)

            def redis_cpu() -> float:
                info = client.info("cpu")
                return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

            before = scrape(metrics_url)
            watch.measuring = True
            window0, window0_wall = time.monotonic(), time.time()
            cpu0 = [process_usage(p).cpu_s for p in [gateway.pid, rtsp_pid, os.getpid(), *pids]]
            redis0, machine0 = redis_cpu(), machine_cpu()
            time.sleep(seconds)
            after = scrape(metrics_url)
            cpu1 = [process_usage(p).cpu_s for p in [gateway.pid, rtsp_pid, os.getpid(), *pids]]
            redis1, machine1 = redis_cpu(), machine_cpu()
            wall = time.monotonic() - window0
            window1_wall = time.time()
            watch.measuring = False
            step.gateway_rss = process_usage(gateway.pid).rss
            spent = [(b - a) / wall for a, b in zip(cpu0, cpu1, strict=True)]
            step.gateway_cpu, step.rtsp_cpu, step.bench_cpu = spent[:3]
            step.replicas_cpu = sum(spent[3:])
            step.redis_cpu = (redis1 - redis0) / wall
            step.machine_busy = (machine1[0] - machine0[0]) / max(1e-9, machine1[1] - machine0[1])
            client.close()
            time.sleep(0.5)  # the last events of the window reach the reader
            t0s_after = {s: m.get("t0") for s, m in watch.clocks().items()}
    finally:
        rtsp.close()
    step.round_trip = round_trip_buckets(before, after)
    for camera in step.cameras_figures:
        name = camera.id
        camera.labels = round(_delta(before, after, "gad_gateway_labels_total", camera=name))
        camera.rate = camera.labels / wall
        for reason in ("late", "disconnected", "in_flight", "server", "error"):
            count = round(
                _delta(
                    before, after, "gad_gateway_frames_dropped_total", camera=name, reason=reason
                )
            )
            if count:
                camera.dropped[reason] = count
                step.dropped[reason] = step.dropped.get(reason, 0) + count
        for side in ("camera", "service"):
            count = round(
                _delta(before, after, "gad_gateway_reconnects_total", camera=name, side=side)
            )
            if count:
                camera.reconnects[side] = count
        camera.lags = [lag for _, lag in watch.lags.get(camera.stream, [])]
        camera.lag_growth = _lag_growth(camera.lags)
        camera.t0_moved = t0s_before.get(camera.stream) != t0s_after.get(camera.stream)
    window = [
        (entry_id, fields, received)
        for entry_id, fields, received in watch.entries
        if window0_wall <= int(entry_id.split("-")[0]) / 1e3 <= window1_wall
    ]
    t0s = {
        s: float(t0) for s, t0 in t0s_after.items() if t0 is not None and t0 == t0s_before.get(s)
    }
    step.events, step.events_malformed = time_events(
        window, t0s, fps=fps, camera_fps=camera_fps, max_gap=DISPLAY_RULE.max_gap
    )
    per_stream = Counter(e.stream for e in step.events)
    for camera in step.cameras_figures:
        camera.events = per_stream[camera.stream]
    return step


# --- the run ----------------------------------------------------------------------------------


@dataclass
class GatewayResult:
    steps: list[GatewayStep]
    knee: GatewayStep | None
    replicas: int
    cores: int
    camera_fps: float
    camera_size: tuple[int, int]
    warmup: float
    events_key: str
    rule: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "knee": None if self.knee is None else self.knee.cameras,
            "replicas": self.replicas,
            "cores": self.cores,
            "camera_fps": self.camera_fps,
            "camera_size": list(self.camera_size),
            "warmup_s": self.warmup,
            "events_key": self.events_key,
            "event_rule": self.rule,
            "steps": [step.as_dict() for step in self.steps],
        }


def bench_gateway(
    package: Path,
    video: Path,
    *,
    cameras: list[int],
    seconds: float = 30.0,
    warmup: float = 5.0,
    replicas: int = 2,
    redis_url: str | None = None,
    threads: int = 1,
    size: tuple[int, int] | None = None,
) -> GatewayResult:
    if not cameras or any(not 1 <= n <= MAX_CAMERAS for n in cameras):
        raise GADError(f"cameras must be 1..{MAX_CAMERAS}, got {cameras}")
    if not 1 <= replicas <= 8 or not 2 <= seconds <= 600 or not 0 <= warmup <= 120:
        raise GADError(
            f"need 1-8 replicas, 2-600 s per step and 0-120 s of warm-up; got {replicas}, "
            f"{seconds}, {warmup}"
        )
    problem = rtsp_available()
    if problem is not None:
        raise GADError(f"no RTSP server ({problem}); {SETUP_HINT}")
    fps = read_package(package).fps
    stamp = f"{int(time.time())}"
    prefix = f"gad-bench-gateway-{stamp}"
    events_key = f"{prefix}:events"
    rule = DISPLAY_RULE
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gad-bench-gw-")))
        clip, camera_fps, camera_size = camera_clip(
            video, warmup + seconds + 30 + max(cameras), folder / "camera.mp4", size=size
        )
        url = redis_url or stack.enter_context(private_redis())
        sink = f"{url}{'&' if '?' in url else '?'}key={events_key}&maxlen=100000"
        env = {
            "GAD_THREADS": str(threads),
            "GAD_PROVIDERS": "cpu",
            "GAD_REDIS_URL": url,
            "GAD_REDIS_PREFIX": prefix,
            "GAD_LOG_LEVEL": "WARNING",
            "GAD_EVENT_SINKS": sink,
            "GAD_EVENT_MIN_SCORE": str(rule.min_score),
            "GAD_EVENT_MIN_FRAMES": str(rule.min_frames),
            "GAD_EVENT_MAX_GAP": str(rule.max_gap),
        }
        args = ["--max-streams", str(math.ceil(max(cameras) / replicas) + 4)]
        servers = [
            stack.enter_context(served(package, env=env, args=args)) for _ in range(replicas)
        ]
        steps = []
        for index, n in enumerate(cameras):
            log.info("gateway: %d cameras for %g s after %g s of warm-up", n, seconds, warmup)
            step = run_step(
                n, clip=clip, camera_fps=camera_fps, servers=servers, fps=fps, seconds=seconds,
                warmup=warmup, redis_url=url, prefix=prefix, events_key=events_key,
                folder=folder, tag=f"{stamp}-{index}",
            )  # fmt: skip
            log.info("gateway: %d cameras: %s", n, step.verdict() or "every camera held")
            steps.append(step)
            time.sleep(1.0)
        if redis_url is not None:  # ours: leave nothing behind in the user's Redis
            import redis

            with redis.Redis.from_url(url) as client:
                client.delete(events_key)
    held = [s for s in steps if not s.verdict()]
    knee = max(held, key=lambda s: s.cameras) if held else None
    return GatewayResult(
        steps, knee, replicas, os.cpu_count() or 1, camera_fps, camera_size, warmup, events_key,
        {"min_score": rule.min_score, "min_frames": rule.min_frames, "max_gap": rule.max_gap},
    )  # fmt: skip


# --- the table ---------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.0f}"


def render_gateway(result: GatewayResult, *, package: Path, cpu: str) -> str:
    manifest = read_package(package)
    fps = manifest.fps
    steps = result.steps
    lines = [
        f"Model {manifest.name} v{manifest.version} ({manifest.window_text}, {fps:g} fps); "
        "cameras: GStreamer's RTSP server, one path per camera, H.264 "
        f"{result.camera_size[0]}×{result.camera_size[1]} at {result.camera_fps:g} fps (sent as "
        f"encoded); one `gad gateway` at {fps:g} fps per camera, cameras "
        f"round-robin over {result.replicas} `gad serve` replicas (onnxruntime CPU, 1 thread) "
        "sharing one Redis, events to a Redis stream; "
        f"{steps[0].seconds:g} s measured per N after {result.warmup:g} s of warm-up; "
        f"everything on one machine: {cpu}, {result.cores} cores.",
        "",
        "| cameras | held in real time | labels/s per camera (min / mean) | lag p50 / max s "
        "(growth) | dropped at gateway | round trip p50 / p99 ms | event latency p50 / p99 ms "
        "(events) | gateway CPU (cores) | gateway per camera (% of a core) | replicas' CPU "
        "(cores) | RTSP server + Redis + bench (cores) | machine busy (other, cores) | "
        "real time |",
        "|---:|---:|---|---|---:|---|---|---:|---:|---:|---|---|---|",
    ]
    for s in steps:
        rates = [c.rate for c in s.cameras_figures]
        lags = s.lags()
        growth = max(c.lag_growth for c in s.cameras_figures)
        latencies = s.latencies()
        dropped = sum(s.dropped.values())
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(s.dropped.items()))
        verdict = s.verdict()
        lines.append(
            f"| {s.cameras} | {len(s.held())} | {min(rates):.2f} / {statistics.fmean(rates):.2f} "
            f"| {percentile(lags, 50):.2f} / {max(lags, default=math.nan):.2f} ({growth:+.2f}) | "
            f"{dropped}{f' ({reasons})' if reasons else ''} | "
            f"{_ms(s.rt_ms(50))} / {_ms(s.rt_ms(99))} | "
            f"{_ms(1e3 * percentile(latencies, 50))} / {_ms(1e3 * percentile(latencies, 99))} "
            f"({len(latencies)}) | {s.gateway_cpu:.2f} | {100 * s.gateway_cpu / s.cameras:.1f} | "
            f"{s.replicas_cpu:.2f} | {s.rtsp_cpu:.2f} + {s.redis_cpu:.2f} + {s.bench_cpu:.2f} | "
            f"{s.machine_busy:.0%} ({s.other_cpu(result.cores):.2f}) | "
            f"{'no: ' + verdict if verdict else 'yes'} |"
        )
    lines += ["", knee_summary(result)]
    return "\n".join(lines)


def knee_summary(result: GatewayResult) -> str:
    knee = result.knee
    if knee is None:
        return "Knee: no N had every camera held in real time."
    latencies = knee.latencies()
    decided = [e.published - e.decided for e in knee.events]
    text = (
        f"Knee: {knee.cameras} cameras held in real time by one gateway (the largest N tried "
        f"with every camera at ≥ {MIN_RATE:.0%} of {knee.fps:g} labels/s, no growing lag, no "
        f"reconnect); gateway {100 * knee.gateway_cpu / knee.cameras:.1f} % of a core per "
        f"camera, RSS {knee.gateway_rss / MiB:.0f} MiB; event latency (capture → in the Redis "
        f"stream) p50 {_ms(1e3 * percentile(latencies, 50))} ms, p99 "
        f"{_ms(1e3 * percentile(latencies, 99))} ms over {len(latencies)} events, of which "
        f"the service deciding → Redis p50 {_ms(1e3 * percentile(decided, 50))} ms."
    )
    failed = [s for s in result.steps if s.verdict() and s.cameras > knee.cameras]
    if failed:
        over = failed[0]
        text += f" At {over.cameras} cameras: {over.verdict()}."
    below = [s for s in result.steps if s.verdict() and s.cameras < knee.cameras]
    if below:  # not monotonic: a blip (another process?) or a real problem; say so
        text += " Not held below the knee: " + "; ".join(
            f"{s.cameras} cameras: {s.verdict()}" for s in below
        )
        text += "."
    return text
