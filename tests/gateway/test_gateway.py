"""The camera gateway end to end, against real servers only: GStreamer's RTSP server and an
HTTP MJPEG camera in, a real `gad serve` (the render demo) out. Faults: the RTSP server
killed and restarted, a camera that stalls with its socket open, the service restarted
under the gateway (Redis keeps the window), cameras that never open beside a working one.

Each fault test prints what it lost (`FAULT ...` lines, `pytest -s`): docs/gateway.md has
the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bench.launch import private_redis
from service.gateway.camera import CameraRunner, Outgoing
from service.gateway.config import parse_config
from service.gateway.run import Gateway
from tests.gateway.conftest import ENV, Clip
from tests.gateway.servers import MjpegCamera, RtspServer, ServiceProcess

FPS = 4.0  # the render demo's
FAST_BACKOFF = {"initial_s": 0.25, "max_s": 2.0, "stable_s": 5.0}


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Record:
    """What one camera sent and got back, with the monotonic time of each."""

    sent: dict[int, Outgoing] = field(default_factory=dict)
    labels: list[tuple[float, dict]] = field(default_factory=list)  # (received, message)

    def attach(self, runner: CameraRunner) -> None:
        runner.on_sent = lambda seq, frame: self.sent.__setitem__(seq, frame)
        runner.on_message = lambda m: (
            self.labels.append((time.monotonic(), m)) if m["type"] == "label" else None
        )

    def count(self) -> int:
        return len(self.labels)

    def lost_between(self, before: int) -> tuple[float, int]:
        """(seconds of camera time, sampled frames) between the last label of the first
        `before` and the first label after them: what the fault cost."""
        last, first = self.labels[before - 1][1], self.labels[before][1]
        gap = self.sent[first["seq"]].ts - self.sent[last["seq"]].ts
        return gap, max(0, round(gap * FPS) - 1)


def config(cameras: list[dict], service: str, **top: Any) -> Any:
    return parse_config(
        {"service": service, "listen": "127.0.0.1:0", "cameras": cameras, **top}, origin="test"
    )


@contextlib.contextmanager
def running(gateway: Gateway) -> Iterator[Gateway]:
    thread = threading.Thread(target=lambda: asyncio.run(gateway.run()), daemon=True)
    thread.start()
    wait_for(lambda: gateway.port is not None, 10, "the gateway to listen")
    try:
        yield gateway
    finally:
        gateway.stop()
        thread.join(20)
        assert not thread.is_alive(), "the gateway did not stop"


def http_get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name}{{{want}}} in /metrics")


def test_an_rtsp_camera_is_labelled_end_to_end(
    rtsp: RtspServer, service: ServiceProcess, clip: Clip
) -> None:
    gateway = Gateway(config([{"id": "door", "source": rtsp.url()}], service.ws_url))
    record = Record()
    record.attach(gateway.runners[0])
    with running(gateway):
        wait_for(lambda: record.count() >= 48, 40, "48 labels (12 s at 4 fps)")
        _, metrics_text = http_get(f"http://127.0.0.1:{gateway.port}/metrics")
        status, health = http_get(f"http://127.0.0.1:{gateway.port}/healthz")
    runner = gateway.runners[0]
    labels = [m for _, m in record.labels]
    assert [m["seq"] for m in labels] == sorted(m["seq"] for m in labels)
    assert all(not m["carried"] for m in labels)  # sampled at the gateway: one frame per row
    rows = [m["row"] for m in labels]
    assert rows[0] == 0 and rows == sorted(rows) and len(set(rows)) == len(rows)
    # the labels are the clip's: truth at each frame's own presentation time
    hits = [m["label"] == clip.label_at(record.sent[m["seq"]].pts or -1) for m in labels[8:]]
    accuracy = sum(hits) / len(hits)
    print(f"\nRTSP end to end: {len(labels)} labels, {accuracy:.0%} equal to the clip's truth")
    assert accuracy > 0.6
    # the camera's own clock crossed the wire: pts spacing of the frames sent = ts spacing
    sent = [record.sent[m["seq"]] for m in labels]
    for a, b in itertools.pairwise(sent):
        assert b.ts - a.ts == pytest.approx(b.pts - a.pts, abs=1e-3)
    assert status == 200
    cameras = json.loads(health)["cameras"]
    assert cameras["door"]["camera"] == "reading" and cameras["door"]["service"] == "joined"
    assert metric(metrics_text, "gad_gateway_frames_sent_total", camera="door") >= 48
    assert metric(metrics_text, "gad_gateway_labels_total", camera="door") >= 48
    assert metric(metrics_text, "gad_gateway_round_trip_seconds_count", camera="door") >= 48
    assert 0 <= metric(metrics_text, "gad_gateway_last_frame_age_seconds", camera="door") < 1
    assert 'gad_gateway_camera_state{camera="door",gad_gateway_camera_state="reading"} 1.0' in (
        metrics_text
    )
    read = metric(metrics_text, "gad_gateway_frames_read_total", camera="door")
    assert read > 2 * metric(metrics_text, "gad_gateway_frames_sent_total", camera="door")
    assert runner.status.dropped == {}  # one camera, 4 fps: nothing late


def test_a_camera_that_never_opens_or_hangs_does_not_slow_another(
    service: ServiceProcess, mjpeg_frames: tuple[list[bytes], float]
) -> None:
    import socket

    with MjpegCamera(*mjpeg_frames) as camera, socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts, never answers: a camera that hangs on open
        cameras = [
            {"id": "good", "source": camera.url},
            {"id": "hung", "source": f"rtsp://127.0.0.1:{silent.getsockname()[1]}/x",
             "open_timeout_s": 2},
            {"id": "refused", "source": "rtsp://user:secret@127.0.0.1:9/x"},
        ]  # fmt: skip
        gateway = Gateway(config(cameras, service.ws_url, defaults={"backoff": FAST_BACKOFF}))
        record = Record()
        record.attach(gateway.runners[0])
        with running(gateway):
            started = time.monotonic()
            wait_for(lambda: record.count() >= 24, 30, "24 labels from the good camera")
            elapsed = time.monotonic() - started
            health = json.loads(http_get(f"http://127.0.0.1:{gateway.port}/healthz")[1])
    good, hung, refused = (health["cameras"][name] for name in ("good", "hung", "refused"))
    assert good["camera"] == "reading" and good["dropped"] == {}
    assert hung["camera"] in ("opening", "backoff") and hung["frames"]["read"] == 0
    assert "open timeout" in hung["errors"]["camera"]
    assert refused["camera"] in ("opening", "backoff")
    assert "Connection refused" in refused["errors"]["camera"]
    assert "secret" not in json.dumps(health)  # passwords never reach /healthz
    rate = 24 / elapsed
    print(f"\nisolation: the good camera labelled at {rate:.2f} fps beside a hung and a dead one")
    assert rate > 0.8 * FPS * 24 / (24 + 2 * FPS)  # real time, less the first join


def test_the_rtsp_server_killed_and_restarted(rtsp: RtspServer, service: ServiceProcess) -> None:
    cameras = [{"id": "cam", "source": rtsp.url(), "read_timeout_s": 2, "backoff": FAST_BACKOFF}]
    gateway = Gateway(config(cameras, service.ws_url))
    record = Record()
    record.attach(gateway.runners[0])
    runner = gateway.runners[0]
    with running(gateway):
        wait_for(lambda: record.count() >= 12, 30, "12 labels")
        rtsp.kill()  # SIGKILL: the camera is gone, mid-stream
        killed_at, before = time.monotonic(), record.count()
        time.sleep(3)
        rtsp.start()  # back on the same port
        restarted = time.monotonic()
        wait_for(lambda: record.count() >= before + 12, 40, "12 labels after the restart")
    first_after = record.labels[before][0]
    gap_s, lost = record.lost_between(before)
    print(
        f"\nFAULT rtsp-restart: camera down 3.0 s, first label {first_after - restarted:.2f} s "
        f"after the server was back; {gap_s:.2f} s of camera time without labels = {lost} "
        f"frames at {FPS:g} fps; reconnects {dict(runner.status.reconnects)}"
    )
    assert runner.status.reconnects["camera"] >= 1
    assert runner.status.reconnects.get("service", 0) == 0  # the stream stayed up
    assert first_after - restarted < FAST_BACKOFF["max_s"] + 4  # within the backoff + a join
    labels = [m for _, m in record.labels]
    rows = [m["row"] for m in labels]
    assert rows == sorted(rows) and rows[before] > rows[before - 1]  # the same stream goes on
    assert {ready["stream"] for ready in runner.status.readies} == {"cam"}
    assert killed_at < first_after


def test_a_camera_that_stalls_is_reopened(
    service: ServiceProcess, mjpeg_frames: tuple[list[bytes], float]
) -> None:
    with MjpegCamera(*mjpeg_frames) as camera:
        cameras = [{"id": "cam", "source": camera.url, "read_timeout_s": 1.5}]
        gateway = Gateway(config(cameras, service.ws_url, defaults={"backoff": FAST_BACKOFF}))
        record = Record()
        record.attach(gateway.runners[0])
        runner = gateway.runners[0]
        with running(gateway):
            wait_for(lambda: record.count() >= 12, 30, "12 labels")
            camera.stall()  # socket open, no more frames
            stalled_at, before = time.monotonic(), record.count()
            wait_for(lambda: record.count() >= before + 8, 30, "8 labels after the stall")
        assert camera.connections >= 2  # reopened
    resumed_at = record.labels[before][0]
    _gap_s, lost = record.lost_between(before)
    print(
        f"\nFAULT camera-stall: detected and reopened, labels again {resumed_at - stalled_at:.2f}"
        f" s after the stall began (read timeout 1.5 s); {lost} frames lost at {FPS:g} fps"
    )
    assert "stalled" in runner.status.last_error["camera"]
    assert runner.status.reconnects["camera"] >= 1
    assert 1.5 <= resumed_at - stalled_at < 1.5 + FAST_BACKOFF["max_s"] + 3


def test_the_service_restarted_under_the_gateway_is_rejoined_and_resumes(
    package: Path, mjpeg_frames: tuple[list[bytes], float]
) -> None:
    with private_redis() as redis_url, MjpegCamera(*mjpeg_frames) as camera:
        server = ServiceProcess(package, ENV | {"GAD_REDIS_URL": redis_url}).start()
        try:
            cameras = [{"id": "cam", "source": camera.url, "backoff": FAST_BACKOFF}]
            gateway = Gateway(config(cameras, server.ws_url))
            record = Record()
            record.attach(gateway.runners[0])
            runner = gateway.runners[0]
            with running(gateway):
                wait_for(lambda: record.count() >= 12, 40, "12 labels")
                stopped_at = time.monotonic()
                server.stop()  # SIGTERM: the service closes its streams with 1012
                before = record.count()
                down_s = time.monotonic() - stopped_at
                server.start()  # the same URL, a new process
                back_at = time.monotonic()
                wait_for(lambda: record.count() >= before + 12, 60, "12 labels after")
        finally:
            server.close()
    first_after = record.labels[before][0]
    _gap_s, lost = record.lost_between(before)
    readies = runner.status.readies
    print(
        f"\nFAULT service-restart: service down {back_at - stopped_at:.1f} s (stop {down_s:.1f} s"
        f" + start); first label {first_after - back_at:.2f} s after it was ready; {lost} "
        f"frames lost; rejoined resumed={readies[-1]['resumed']} at row {readies[-1]['rows']}"
    )
    assert len(readies) >= 2 and not readies[0]["resumed"]
    assert readies[-1]["resumed"] and readies[-1]["rows"] >= 12  # the window came back
    assert runner.status.reconnects["service"] >= 1
    assert (
        "1012" in runner.status.last_error["service"]
        or "unreachable" in (runner.status.last_error["service"])
    )
    rows = [m["row"] for _, m in record.labels]
    assert rows[before] > rows[before - 1]  # rows go on from where the stream was
    assert first_after - back_at < FAST_BACKOFF["max_s"] + 3


def test_a_slow_service_makes_the_gateway_drop_late_frames_not_queue_them(
    package: Path, mjpeg_frames: tuple[list[bytes], float]
) -> None:
    """Live delivery at the gateway: every frame of a 10 fps camera sampled, one in flight,
    a service that takes >= 250 ms a frame (its batches wait GAD_MAX_WAIT_MS for company):
    the frames it cannot take are dropped at the gateway as `late`, and the round trip
    stays one frame's service time — nothing queues anywhere."""
    server = ServiceProcess(package, ENV | {"GAD_MAX_WAIT_MS": "250"}).start()
    try:
        with MjpegCamera(*mjpeg_frames) as camera:
            cameras = [{"id": "cam", "source": camera.url, "fps": 10, "in_flight": 1}]
            gateway = Gateway(config(cameras, server.ws_url))
            record = Record()
            record.attach(gateway.runners[0])
            runner = gateway.runners[0]
            with running(gateway):
                wait_for(lambda: record.count() >= 20, 40, "20 labels")
                time.sleep(0.2)
                status = runner.status
                sampled, sent, late = status.sampled, status.sent, status.dropped["late"]
    finally:
        server.close()
    round_trips = sorted(received - record.sent[m["seq"]].captured for received, m in record.labels)
    p90 = round_trips[int(0.9 * len(round_trips))]
    print(
        f"\nlive delivery: {sampled} frames sampled at 10 fps, {sent} sent, {late} dropped "
        f"late at the gateway; capture to label p90 {p90 * 1e3:.0f} ms"
    )
    assert late >= 0.3 * sampled  # the service takes at most ~4 of 10 frames a second
    assert sent + late + status.dropped["disconnected"] >= sampled - 2  # each frame: one fate
    assert status.dropped.get("server", 0) == 0  # one in flight: the server queue never fills
    assert p90 < 1.0  # bounded by one frame's service time, not growing
