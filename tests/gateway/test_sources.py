"""runtime/sources.py against real sources: a file, an HTTP MJPEG camera, GStreamer's RTSP
server; timestamps, sampling, stalls and the errors of bad specs."""

from __future__ import annotations

import itertools
import re
import time

import pytest

from runtime.sources import (
    SourceError,
    SourceStalled,
    SourceUnavailable,
    Timeline,
    open_source,
    parse_source,
    redact_url,
)
from runtime.video import FpsSampler, FrameReader
from tests.gateway.conftest import Clip
from tests.gateway.servers import MjpegCamera, RtspServer, jpeg_frames


def test_specs() -> None:
    assert parse_source("rtsp://h/s").kind == "rtsp"
    assert parse_source("RTSPS://h:322/s").kind == "rtsp"
    assert parse_source("https://h/video.mjpg").kind == "http"
    with pytest.raises(SourceError, match="empty source"):
        parse_source(" ")
    with pytest.raises(SourceError, match=r"no video device /dev/video0 \(from '0'\): no camera"):
        parse_source(0)  # no V4L2 device on this machine (no v4l2loopback module either)
    with pytest.raises(SourceError, match="unsupported source scheme 'udp'"):
        parse_source("udp://239.0.0.1:1234")
    assert redact_url("rtsp://admin:pw@h:554/s") == "rtsp://admin:***@h:554/s"
    assert redact_url("rtsp://h/s") == "rtsp://h/s"


def test_a_file_gives_its_own_timestamps_sampled_like_read_frames(clip: Clip) -> None:
    spec = parse_source(str(clip.video))
    clock = iter(range(1000, 10**6)).__next__  # wall clock of the first frame: 1000
    sampler = FpsSampler(4.0)
    taken = []
    with open_source(spec, timeline=Timeline(clock=lambda: float(clock()))) as source:
        for frame in source:
            if sampler.offer(frame.ts):
                taken.append((frame.ts, frame.pts, frame.rgb(max_side=160).shape))
    assert source.decoded == 400 and source.pts_missing == 0  # 40 s at 10 fps
    assert [t for t, *_ in taken[:3]] == [1000.0, 1000.3, 1000.5]  # anchored at the first frame
    assert all(shape == (120, 160, 3) for *_, shape in taken)
    expected = [f.t for f in FrameReader(clip.video, 4.0) if not f.repeated]
    assert [pts for _, pts, _ in taken] == pytest.approx(expected)  # the one sampling rule


def test_a_file_played_in_real_time_is_paced(clip: Clip) -> None:
    started = time.monotonic()
    with open_source(parse_source(str(clip.video)), realtime=True) as source:
        for frame in source:
            if frame.pts is not None and frame.pts >= 1.0:
                break
    assert 0.9 < time.monotonic() - started < 3


def test_timeline_never_goes_back() -> None:
    now = [100.0]
    timeline = Timeline(clock=lambda: now[0])
    assert timeline.ts(5.0) == 100.0
    assert timeline.ts(5.5) == 100.5  # the stream's own spacing
    timeline.restart()  # a reconnect: the camera's clock starts over at 0
    now[0] = 103.0
    assert timeline.ts(0.0) == 103.0
    now[0] = 90.0  # the wall clock steps back
    assert timeline.ts(60.0) > 103.0  # a jump re-anchors, never before the previous frame
    assert timeline.ts(None) > 103.0
    assert timeline.anchors == 4


def test_an_http_mjpeg_camera_uses_arrival_times_and_a_stall_is_detected(clip: Clip) -> None:
    frames, fps = jpeg_frames(clip.video)
    with MjpegCamera(frames[:50], fps) as camera:
        spec = parse_source(camera.url)
        assert spec.kind == "http"
        times = []
        with (
            pytest.raises(SourceStalled, match="no data for 1 s"),
            open_source(spec, open_timeout=5, read_timeout=1) as source,
        ):
            for frame in source:
                times.append(frame.ts)
                assert frame.pts is None  # MJPEG has none (FFmpeg's are made up at 25 fps)
                if len(times) == 20:
                    camera.stall()  # the socket stays open, nothing more comes
        stalled_after = time.time() - times[-1]
    assert len(times) >= 20 and source.pts_missing == len(times)
    gaps = [b - a for a, b in itertools.pairwise(times[1:])]
    assert sum(gaps) / len(gaps) == pytest.approx(1 / fps, rel=0.3)  # real time, not 1/25 s
    assert 1.0 <= stalled_after < 3.0


def test_errors_are_clear_and_bounded() -> None:
    started = time.monotonic()
    refused = re.escape("cannot open rtsp://u:***@127.0.0.1:9/x: Connection refused")
    with (
        pytest.raises(SourceUnavailable, match=refused),
        open_source(parse_source("rtsp://u:secret@127.0.0.1:9/x"), open_timeout=2),
    ):
        pass
    with (
        pytest.raises(SourceUnavailable, match=re.escape("cannot open http://127.0.0.1:9/v.mjpg")),
        open_source(parse_source("http://127.0.0.1:9/v.mjpg"), open_timeout=2),
    ):
        pass
    assert time.monotonic() - started < 4


def test_a_listener_that_never_answers_hits_the_open_timeout() -> None:
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts (the kernel does), never says a word
        url = f"rtsp://127.0.0.1:{silent.getsockname()[1]}/x"
        started = time.monotonic()
        with (
            pytest.raises(SourceUnavailable, match=r"no answer within the 1\.5 s open timeout"),
            open_source(parse_source(url), open_timeout=1.5),
        ):
            pass
    assert time.monotonic() - started < 4


def test_rtsp_gives_the_streams_timestamps_in_real_time(rtsp: RtspServer, clip: Clip) -> None:
    with open_source(parse_source(rtsp.url()), open_timeout=5, read_timeout=3) as source:
        assert source.opened_s < 3 and (source.width, source.height) == (320, 240)
        got = []
        started = time.monotonic()
        for frame in source:
            got.append((time.monotonic() - started, frame.pts, frame.ts))
            if len(got) == 25:
                break
    pts = [p for _, p, _ in got]
    assert all(p is not None for p in pts) and pts == sorted(pts)
    assert pts[1] - pts[0] == pytest.approx(0.1, abs=1e-3)  # the clip's 10 fps, exactly
    ts = [t for *_, t in got]
    assert [b - a for a, b in itertools.pairwise(ts)] == pytest.approx(
        [b - a for a, b in itertools.pairwise(pts)], abs=1e-5
    )  # the camera's clock, not the arrival times
    assert got[-1][0] - got[0][0] > 1.5  # played live, not as a burst
    assert pts[0] < 2.0  # joined near the start of the clip


def test_an_rtsp_server_that_stops_answering_is_a_stall(rtsp: RtspServer) -> None:
    with open_source(parse_source(rtsp.url()), open_timeout=5, read_timeout=1.5) as source:
        frames = 0
        with pytest.raises(SourceStalled, match=r"no data for 1.5 s \(read timeout\)"):
            for _ in source:
                frames += 1
                if frames == 10:
                    rtsp.pause()  # SIGSTOP: the TCP connection stays up, no packet comes
                    paused = time.monotonic()
        assert 1.4 < time.monotonic() - paused < 5  # one or two read timeouts
    rtsp.resume()
