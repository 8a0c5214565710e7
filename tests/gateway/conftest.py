"""Fixtures of the gateway tests: the render demo (its package and a test video whose
truth is known) and a real RTSP server."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.gateway.servers import (
    SETUP_HINT,
    RtspServer,
    ServiceProcess,
    jpeg_frames,
    rtsp_available,
)

ENV = {"GAD_PROVIDERS": "cpu", "GAD_THREADS": "1", "GAD_LOG_LEVEL": "WARNING"}


@dataclass(frozen=True)
class Clip:
    video: Path
    segments: list[tuple[float, float, str]]  # (start s, end s, label), the video's truth

    def label_at(self, t: float) -> str:
        for start, end, label in self.segments:
            if start <= t < end:
                return label
        return "Background"


@pytest.fixture(scope="session")
def package(render_demo: Path) -> Path:
    from gad.demo import package_dir

    return package_dir(render_demo)


@pytest.fixture(scope="session")
def clip(render_demo: Path) -> Clip:
    """A test-split video of the render benchmark (the model never trained on it)."""
    name = json.loads((render_demo / "render" / "split.json").read_text())["test"][0]
    video = render_demo / "render" / "videos" / f"{name}.mp4"
    with (render_demo / "render" / "annotations.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["video"] == video.name]
    segments = [(float(r["start_s"]), float(r["end_s"]), r["label"]) for r in rows]
    return Clip(video, segments)


@pytest.fixture
def rtsp(clip: Clip) -> Iterator[RtspServer]:
    """GStreamer's RTSP server playing the clip at rtsp://127.0.0.1:PORT/cam0."""
    problem = rtsp_available()
    if problem is not None:
        pytest.fail(f"no RTSP server ({problem}); {SETUP_HINT}", pytrace=False)
    server = RtspServer([clip.video]).start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def service(package: Path) -> Iterator[ServiceProcess]:
    """`gad serve` on the render demo (in-process cache), shared by the gateway tests."""
    server = ServiceProcess(package, ENV).start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def mjpeg_frames(clip: Clip) -> tuple[list[bytes], float]:
    """The clip's frames as JPEG files for an MJPEG camera, and its fps."""
    return jpeg_frames(clip.video)
