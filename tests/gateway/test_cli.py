"""`gad gateway` and `gad stream --source` as a user runs them: real processes, a real
service, an HTTP MJPEG camera; bad input gets one clear line and exit code 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.launch import free_port
from tests.gateway.servers import MjpegCamera, ServiceProcess

GAD = [sys.executable, "-m", "gad.cli"]


def gad(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GAD, *args], capture_output=True, text=True, timeout=timeout)


def test_bad_input_gets_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras: [{id: door, source: rtsp://h/x, fsp: 4}]\n")
    done = gad("gateway", str(bad))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"gad gateway: error: {bad}: camera door: fsp: Extra inputs are not permitted"
    )
    done = gad("stream", "--source", "/dev/video0", "--url", "ws://127.0.0.1:9/v1/streams/x")
    assert done.returncode == 2 and "no video device /dev/video0" in done.stderr
    done = gad("stream", "--source", "ftp://h/x")
    assert done.returncode == 2 and "unsupported source scheme 'ftp'" in done.stderr


def test_gad_gateway_runs_cameras_serves_metrics_and_logs_json(
    tmp_path: Path, service: ServiceProcess, mjpeg_frames: tuple[list[bytes], float]
) -> None:
    port = free_port()
    with MjpegCamera(*mjpeg_frames) as camera:
        path = tmp_path / "gateway.yaml"
        path.write_text(
            f"service: {service.url}\nlisten: 127.0.0.1:{port}\n"
            f"cameras:\n  - id: desk\n    source: {camera.url}\n    stream: gw-desk\n"
        )
        check = gad("gateway", str(path), "--check")
        assert check.returncode == 0, check.stderr
        assert f"desk             http   {camera.url} -> {service.ws_url}/v1/streams/gw-desk" in (
            check.stdout
        )
        process = subprocess.Popen(
            [*GAD, "gateway", str(path)], stderr=subprocess.PIPE, text=True, env=os.environ
        )
        try:
            deadline, health = time.monotonic() + 40, {}
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as r:
                        health = json.loads(r.read())
                    if health["cameras"]["desk"]["labels"] >= 8:
                        break
                except OSError:
                    pass
                time.sleep(0.25)
            assert health["cameras"]["desk"]["labels"] >= 8, health
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as r:
                assert 'gad_gateway_labels_total{camera="desk"}' in r.read().decode()
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    changes = [(e["side"], e["state"]) for e in lines if e.get("camera") == "desk"]
    assert ("camera", "reading") in changes and ("service", "joined") in changes
    assert changes[-2:] in ([("camera", "stopped"), ("service", "stopped")],
                            [("service", "stopped"), ("camera", "stopped")])  # fmt: skip
    joined = next(e for e in lines if e.get("state") == "joined")
    assert joined["resumed"] is False and joined["level"] == "info"


def test_gad_stream_source_streams_a_camera_live(
    service: ServiceProcess, mjpeg_frames: tuple[list[bytes], float]
) -> None:
    with MjpegCamera(*mjpeg_frames) as camera:
        url = f"{service.ws_url}/v1/streams/cli-camera"
        done = gad("stream", "--source", camera.url, "--url", url, "--duration", "6")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("seq     0  t    0.00s  ")
    summary = json.loads(done.stdout[done.stdout.index("\n{") :])
    # Live delivery: a frame that comes while the last is still unanswered is dropped, which
    # a loaded machine may do once or twice; nothing else is ever dropped.
    assert summary["labels"] >= 12, summary
    assert set(summary["dropped"]) <= {"in_flight"} and sum(summary["dropped"].values()) <= 3
    assert summary["service"] == "stopped" and summary["frames"]["sent"] == summary["labels"]
