"""The gateway's Prometheus metrics, prefix `gad_gateway_`, one series per camera (a site
has tens of cameras, not thousands: the label stays bounded). Its own registry per
gateway, so tests can run several."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram

from service.metrics import LATENCY_BUCKETS

CAMERA_STATES = ["opening", "reading", "backoff", "stopped"]
LINK_STATES = ["connecting", "joined", "backoff", "refused", "stopped"]


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        camera = ["camera"]
        self.camera_state = Enum(
            "gad_gateway_camera_state", "The camera's source", camera,
            states=CAMERA_STATES, registry=r,
        )  # fmt: skip
        self.link_state = Enum(
            "gad_gateway_service_state", "The camera's stream to the service", camera,
            states=LINK_STATES, registry=r,
        )  # fmt: skip
        self.frames_read = Counter(
            "gad_gateway_frames_read", "Frames decoded from the camera", camera, registry=r
        )
        self.frames_sampled = Counter(
            "gad_gateway_frames_sampled", "Frames taken at the model's fps", camera, registry=r
        )
        self.frames_sent = Counter(
            "gad_gateway_frames_sent", "Frames sent to the service", camera, registry=r
        )
        self.labels = Counter(
            "gad_gateway_labels", "Labels received from the service", camera, registry=r
        )
        self.frames_dropped = Counter(
            "gad_gateway_frames_dropped",
            "Sampled frames that got no label: late (a newer frame replaced it), "
            "disconnected (no stream to the service), in_flight (sent, the stream closed "
            "before the answer), server (the service dropped it), error (refused)",
            [*camera, "reason"],
            registry=r,
        )
        self.reconnects = Counter(
            "gad_gateway_reconnects",
            "Reconnections, by side: camera (source reopened), service (stream rejoined)",
            [*camera, "side"],
            registry=r,
        )
        self.frame_age = Gauge(
            "gad_gateway_last_frame_age_seconds",
            "Seconds since the camera's last decoded frame (-1: none yet)",
            camera,
            registry=r,
        )
        self.round_trip = Histogram(
            "gad_gateway_round_trip_seconds",
            "Frame sent to its label received",
            camera,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def track_age(self, camera: str, age: Callable[[], float]) -> None:
        self.frame_age.labels(camera).set_function(age)
