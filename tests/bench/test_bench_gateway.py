"""`gad bench gateway` for real, briefly: GStreamer's RTSP server → `gad gateway` → two
`gad serve` replicas on a private Redis → events in a Redis stream, at 2 cameras."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.gateway import histogram_quantile
from bench.rtsp import SETUP_HINT, rtsp_available
from gad.cli import main

pytestmark = pytest.mark.integration

SECONDS = 10  # the render test video's first action starts 5.25 s in: its `started` is inside


def test_histogram_quantile_interpolates_within_the_bucket() -> None:
    buckets = [(0.1, 50.0), (0.2, 90.0), (0.5, 100.0), (float("inf"), 100.0)]
    assert histogram_quantile(buckets, 0.5) == pytest.approx(0.1)
    assert histogram_quantile(buckets, 0.7) == pytest.approx(0.15)
    assert histogram_quantile(buckets, 0.99) == pytest.approx(0.47)
    assert histogram_quantile([(0.1, 0.0)], 0.5) != histogram_quantile([(0.1, 0.0)], 0.5)  # NaN


def test_bench_gateway_cameras_to_labels_and_events(
    render_demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    problem = rtsp_available()
    if problem is not None:
        pytest.fail(f"no RTSP server ({problem}); {SETUP_HINT}", pytrace=False)
    out = tmp_path / "gateway.md"
    argv = ["bench", "gateway", "--cameras", "2", "--seconds", str(SECONDS)]
    assert main([*argv, "--warmup", "1", "--json", "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)

    table = out.read_text()
    rows = [line for line in table.splitlines() if line.startswith("| 2 |")]
    assert len(rows) == 1, table
    assert "Knee:" in table

    steps = {step["cameras"]: step for step in result["steps"]}
    assert set(steps) == {2}
    for n, step in steps.items():
        cameras = step["per_camera"]
        assert len(cameras) == n and len({c["stream"] for c in cameras}) == n
        # every camera labelled through the measured seconds (4 fps asked), its lag sampled
        for camera in cameras:
            assert camera["labels"] >= 0.5 * 4 * SECONDS, camera
            assert len(camera["lags"]) >= SECONDS // 2 and 0 < max(camera["lags"]) < 5, camera
            assert camera["events"] >= 1, camera  # the clip's first action, on every camera
        assert step["cpu_cores"]["gateway"] > 0 and step["cpu_cores"]["replicas"] > 0
        # the events in the Redis stream: well-formed, of these cameras, timed from capture
        assert step["events_malformed"] == 0
        assert step["events"] >= n and step["events_timed"] == step["events"]
        streams = {c["stream"] for c in cameras}
        for event in step["event_timings"]:
            assert event["stream"] in streams and event["event"] in ("started", "ended")
            assert event["capture"] < event["decided"] <= event["published"] + 0.002
            assert 0 < event["latency_ms"] < 5000
