"""Prometheus metrics (docs/design.md, metrics): prefix `gad_`, base units, histograms in
seconds with sub-millisecond buckets. No per-stream labels on hot metrics (cardinality
stays bounded).

Each app owns its registry, so several apps (tests, two replicas in one process) never
share counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

# 0.25 ms … 10 s: fine at the low end, where a tiny model's inference lives.
LATENCY_BUCKETS = (
    0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05,
    0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.frames_received = Counter(
            "gad_frames_received", "Frames received on streams", ["kind"], registry=r
        )
        self.frames_processed = Counter(
            "gad_frames_processed", "Frames that became a feature row and a label", registry=r
        )
        self.frames_carried = Counter(
            "gad_frames_carried_over",
            "Frames fps sampling skipped, answered with the latest label",
            registry=r,
        )
        self.frames_dropped = Counter(
            "gad_frames_dropped", "Frames dropped, by reason", ["reason"], registry=r
        )
        self.frame_errors = Counter(
            "gad_frame_errors", "Frames refused with an error message", ["reason"], registry=r
        )
        self.reloads = Counter(
            "gad_model_reloads",
            "Model version switches: switched, rolled_back, refused (service/versions.py)",
            ["result"],
            registry=r,
        )
        self.stream_moves = Counter(
            "gad_stream_model_moves",
            "Open streams moved to a new model version at a frame boundary, or kept on theirs",
            ["result"],
            registry=r,
        )
        self.latency = Histogram(
            "gad_frame_latency_seconds",
            "Frame arrival to label sent",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "gad_queue_wait_seconds",
            "Frame arrival to processing start (per-stream queue)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_wait = Histogram(
            "gad_batch_wait_seconds",
            "Oldest window's wait for its batch to run",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "gad_inference_seconds", "Head forward pass per batch", buckets=LATENCY_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.batch_size = Histogram(
            "gad_batch_size", "Windows per head batch", buckets=BATCH_BUCKETS, registry=r
        )
        self.encoder = Histogram(
            "gad_encoder_seconds", "Frame encoder per batch", buckets=LATENCY_BUCKETS, registry=r
        )
        self.cache = Histogram(
            "gad_cache_seconds", "Feature cache operation", ["op"], buckets=LATENCY_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.cache_errors = Counter(
            "gad_cache_errors", "Feature cache failures", ["kind"], registry=r
        )
        self.active_streams = Gauge("gad_active_streams", "Open stream connections", registry=r)
        self.streams_closed = Counter(
            "gad_streams_closed", "Stream connections closed, by close code", ["code"], registry=r
        )
        self.classify_requests = Counter(
            "gad_classify_requests", "POST /classify requests, by status", ["status"], registry=r
        )
        self.classify_latency = Histogram(
            "gad_classify_seconds",
            "POST /classify processing time",
            buckets=(*LATENCY_BUCKETS, 30.0, 60.0, 120.0),
            registry=r,
        )
        self.model_info = Info("gad_model", "The loaded model package", registry=r)
        # Action events (service/events/): `sink` is a configured sink's name (redis, mqtt,
        # webhook, kind-2...), "sse" for GET /v1/events listeners, "all" at shutdown.
        self.events = Counter(
            "gad_events", "Action events made, by event (started, ended)", ["event"], registry=r
        )
        self.events_published = Counter(
            "gad_events_published", "Events a sink acknowledged", ["sink"], registry=r
        )
        self.events_dropped = Counter(
            "gad_events_dropped",
            "Events a sink will never get: buffer_full, rejected, shutdown",
            ["sink", "reason"],
            registry=r,
        )
        self.event_sink_errors = Counter(
            "gad_event_sink_errors", "Failed delivery attempts (retried)", ["sink"], registry=r
        )
        self.event_sink_up = Gauge(
            "gad_event_sink_up", "1 while a sink delivers, 0 while it is down", ["sink"],
            registry=r,
        )  # fmt: skip
        self.event_buffer = Gauge(
            "gad_event_buffer", "Events waiting for a sink", ["sink"], registry=r
        )
        self.event_latency = Histogram(
            "gad_event_delivery_seconds",
            "Event made to acknowledged by a sink",
            ["sink"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.event_outbox_overflow = Counter(
            "gad_event_outbox_overflow",
            "Unsettled events past a stream's outbox (kept in memory only: a crash loses them)",
            registry=r,
        )
        self.event_subscribers = Gauge(
            "gad_event_subscribers", "Open GET /v1/events listeners", registry=r
        )

    def on_batch(self, size: int, wait_s: float, run_s: float) -> None:
        """The head micro-batcher's hook."""
        self.batch_size.observe(size)
        self.batch_wait.observe(wait_s)
        self.inference.observe(run_s)

    def on_encoder_batch(self, size: int, wait_s: float, run_s: float) -> None:
        self.encoder.observe(run_s)
