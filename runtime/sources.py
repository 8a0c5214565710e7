"""Live sources: a file, `rtsp://` / `rtsps://`, `http(s)://` (MJPEG or anything FFmpeg
reads), a V4L2 device (`/dev/video0`) or a camera index → timestamped frames.

    spec = parse_source("rtsp://cam-3.local/stream1")
    with open_source(spec, open_timeout=10, read_timeout=5) as source:
        for frame in source:                  # every decoded frame, with its capture time
            if sampler.offer(frame.ts):       # runtime.video.FpsSampler: the one rule
                rgb = frame.rgb(max_side=960)  # pixels only for the frames the model reads

**The library: PyAV** (FFmpeg's libraries, bundled in its wheel) for files and network
streams, chosen over OpenCV's FFmpeg backend for three reasons measured here (rendered
clip served by GStreamer's RTSP server, docs/gateway.md):

- *Timeouts with a cause.* `av.open(url, timeout=(open_s, read_s))` interrupts a blocked
  open or read, and the error says which: `ExitError` (a stall: no data for read_s, the
  socket still open), `ConnectionRefusedError`, end of stream. OpenCV's
  `CAP_PROP_READ_TIMEOUT_MSEC` interrupts too, but `grab()` then returns a bare False for
  a stall, an error and the end alike, and from a stall to a released capture took three
  timeouts (6.0 s at 2 s, twice; PyAV raised after 2.0-4.0 s and closed at once).
- *Presentation timestamps as the stream gives them, and whether it has any.*
  `frame.time` (pts × time_base), and the demuxer's `AVFMT_NOTIMESTAMPS` flag: MJPEG over
  HTTP has no timestamps, FFmpeg invents 25 fps ones (a 10 fps camera's second would last
  0.4 s), so such a stream uses the arrival time, knowingly. OpenCV hides both: its
  `CAP_PROP_POS_MSEC` is the invented time, and reads 0 for "none" and "the first frame".
- *Per-camera demuxer options* (`rtsp_transport`, `probesize`, `analyzeduration`,
  `fflags`): an argument of each open. OpenCV reads them from one process-wide variable
  (`OPENCV_FFMPEG_CAPTURE_OPTIONS`), so cameras in one gateway cannot differ; with its
  default probing an RTSP open took 3.1 s and delivered 2.5 s of stale frames in a burst
  (PyAV with a small probe: 0.3 s, frames in real time).

The cost is a second FFmpeg in the image (the av wheel, ~36 MB). PyAV's wheel has no V4L2
input device, so devices and camera indexes go through OpenCV's own V4L2 backend (no
FFmpeg there; the buffer timestamps are the driver's).

**Timestamps.** A frame's `ts` is on one continuous clock per source object: the wall
time (`clock`, default time.time) at the connection's first frame, plus the stream's own
presentation time since then. A frame without a timestamp, or whose timestamp goes back
or jumps by more than `max_jump_s`, re-anchors at its arrival time. So a camera that
restarts (timestamps from 0 again) or a reopened connection never sends the service a
time that goes backwards, and gaps stay as long as they really were.

numpy + cv2 + av only: the serving image runs this without torch.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from runtime.errors import GADError

Kind = Literal["file", "rtsp", "http", "device"]

# Small probes: a live stream's first frame in ~0.3 s instead of FFmpeg's 5 s default
# analysis, and no demuxer buffering (frames are handed on as they arrive).
NETWORK_OPTIONS = {"probesize": "65536", "analyzeduration": "500000", "fflags": "nobuffer"}
RTSP_OPTIONS = {"rtsp_transport": "tcp"}  # no UDP loss or NAT trouble; "udp" per camera
AVFMT_NOTIMESTAMPS = 0x0080  # libavformat/avformat.h: the format has no timestamps


class SourceError(GADError):
    """A source that cannot be used: a bad spec, or one that fails to open or read."""


class SourceUnavailable(SourceError):
    """Opening failed (refused, not found, timed out): worth retrying later."""


class SourceStalled(SourceError):
    """No frame within the read timeout although the connection did not close."""


@dataclass(frozen=True)
class SourceSpec:
    kind: Kind
    location: str  # a path, a URL, or a device path

    @property
    def live(self) -> bool:
        return self.kind != "file"

    def describe(self) -> str:
        """The location with any password replaced by *** (for logs and metrics)."""
        return redact_url(self.location)


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    host += f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


_SCHEMES = {"rtsp": "rtsp", "rtsps": "rtsp", "http": "http", "https": "http", "file": "file"}


def parse_source(text: str | int) -> SourceSpec:
    """A source spec: a camera index (`0`), a device (`/dev/video0`), a URL (rtsp, rtsps,
    http, https, file) or a path to an existing file. Raises SourceError naming the
    problem (an unknown scheme, a file that does not exist, a device that is missing)."""
    value = str(text).strip()
    if not value:
        raise SourceError("empty source: give a file, rtsp://…, http(s)://…, /dev/videoN or N")
    if re.fullmatch(r"\d{1,3}", value):
        return _device(f"/dev/video{int(value)}", value)
    if value.startswith("/dev/"):
        return _device(value, value)
    scheme = urlsplit(value).scheme.lower() if "://" in value else ""
    if scheme:
        kind = _SCHEMES.get(scheme)
        if kind is None:
            raise SourceError(
                f"unsupported source scheme {scheme!r} in {redact_url(value)}: use rtsp://, "
                "rtsps://, http://, https://, file://, a device path or a camera index"
            )
        if kind == "file":
            return _file(Path(urlsplit(value).path))
        if not urlsplit(value).hostname:
            raise SourceError(f"source URL {redact_url(value)} has no host")
        return SourceSpec("rtsp" if kind == "rtsp" else "http", value)
    return _file(Path(value))


def _file(path: Path) -> SourceSpec:
    if not path.exists():
        raise SourceError(f"source file {path} not found")
    if not path.is_file():
        raise SourceError(f"source {path} is not a file")
    return SourceSpec("file", str(path))


def _device(path: str, given: str) -> SourceSpec:
    if not os.path.exists(path):
        raise SourceError(
            f"no video device {path} (from {given!r}): no camera is attached there, or the "
            "container was not given it (docker run --device, a k8s hostPath)"
        )
    return SourceSpec("device", path)


class Frame(Protocol):
    ts: float  # capture time on the source's continuous clock, seconds
    pts: float | None  # the stream's own presentation time; None when it has none

    def rgb(self, *, max_side: int | None = None) -> np.ndarray:
        """[H, W, 3] uint8 RGB, scaled down so that neither side exceeds max_side."""
        ...


def _fit(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    # even sizes: what the scaler and JPEG chroma subsampling like
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


@dataclass
class _AvFrame:
    ts: float
    pts: float | None
    frame: Any  # av.VideoFrame

    def rgb(self, *, max_side: int | None = None) -> np.ndarray:
        width, height = _fit(self.frame.width, self.frame.height, max_side)
        out: np.ndarray = self.frame.to_ndarray(width=width, height=height, format="rgb24")
        return out


@dataclass
class _CvFrame:
    ts: float
    pts: float | None
    capture: cv2.VideoCapture

    def rgb(self, *, max_side: int | None = None) -> np.ndarray:
        ok, bgr = self.capture.retrieve()
        if not ok or bgr is None:
            raise SourceError("a grabbed device frame could not be decoded")
        height, width = bgr.shape[:2]
        size = _fit(width, height, max_side)
        if size != (width, height):
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@dataclass
class Timeline:
    """A connection's presentation times → one continuous clock (module docstring)."""

    clock: Callable[[], float] = time.time
    max_jump_s: float = 2.0
    anchors: int = 0  # times the clock was (re-)anchored
    _anchor: float | None = field(default=None, repr=False)
    _pts0: float = 0.0
    _last_pts: float | None = None
    _last_ts: float | None = None

    def restart(self) -> None:
        """A new connection: its first frame anchors again."""
        self._anchor = self._last_pts = None

    def ts(self, pts: float | None) -> float:
        now = self.clock()
        last = self._last_pts
        if (
            pts is None
            or self._anchor is None
            or last is None
            or pts < last
            or pts - last > self.max_jump_s
        ):
            # never before the previous frame, even when the wall clock steps back
            self._anchor = now if self._last_ts is None else max(now, self._last_ts + 1e-3)
            self._pts0 = pts or 0.0
            self.anchors += 1
        self._last_pts = pts
        ts = self._anchor + ((pts or 0.0) - self._pts0)
        self._last_ts = ts
        return ts


class Source:
    """An open source: iterate it for frames (see `open_source`). `decoded` counts frames,
    `opened_s` how long the open took, `pts_missing` frames without a timestamp."""

    def __init__(self, spec: SourceSpec, timeline: Timeline) -> None:
        self.spec = spec
        self.timeline = timeline
        self.decoded = 0
        self.pts_missing = 0
        self.opened_s = 0.0
        self.width = 0
        self.height = 0

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _AvSource(Source):
    def __init__(
        self,
        spec: SourceSpec,
        timeline: Timeline,
        *,
        open_timeout: float,
        read_timeout: float,
        options: Mapping[str, str],
        realtime: bool,
    ) -> None:
        import av

        super().__init__(spec, timeline)
        self.realtime = realtime
        merged: dict[str, str] = {}
        if spec.kind != "file":
            merged |= NETWORK_OPTIONS
        if spec.kind == "rtsp":
            merged |= RTSP_OPTIONS
        merged |= {str(k): str(v) for k, v in options.items()}
        started = time.monotonic()
        try:
            self.container: Any = av.open(
                spec.location, options=merged, timeout=(open_timeout, read_timeout)
            )
        except (av.error.FFmpegError, OSError) as exc:
            # a timed-out RTSP handshake surfaces as "invalid data": say what happened
            if isinstance(exc, av.error.ExitError) or (
                time.monotonic() - started >= 0.9 * open_timeout
            ):
                raise SourceUnavailable(
                    f"{spec.describe()}: no answer within the {open_timeout:g} s open timeout"
                ) from None
            raise SourceUnavailable(f"cannot open {spec.describe()}: {_reason(exc)}") from None
        self.opened_s = time.monotonic() - started
        if not self.container.streams.video:
            self.container.close()
            raise SourceError(f"{spec.describe()} has no video stream")
        self.stream = self.container.streams.video[0]
        # pts the demuxer makes up (MJPEG: frame count / 25) are not the camera's clock
        self.invented_pts = bool(self.container.format.flags & AVFMT_NOTIMESTAMPS)
        self.width, self.height = self.stream.codec_context.width, self.stream.codec_context.height
        self.read_timeout = read_timeout

    def __iter__(self) -> Iterator[Frame]:
        import av

        self.timeline.restart()
        started: float | None = None
        first_pts = 0.0
        try:
            for packet in self.container.demux(self.stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    continue  # a corrupt packet (lost data): the decoder resyncs at the next
                for frame in frames:
                    self.decoded += 1
                    pts = None if self.invented_pts else frame.time
                    if pts is None or not math.isfinite(pts):
                        pts = None
                        self.pts_missing += 1
                    if self.realtime and pts is not None:
                        # a file played as a camera: at the pace of its timestamps
                        if started is None:
                            started, first_pts = time.monotonic(), pts
                        ahead = (pts - first_pts) - (time.monotonic() - started)
                        if ahead > 0:
                            time.sleep(ahead)
                    yield _AvFrame(self.timeline.ts(pts), pts, frame)
        except av.error.ExitError:
            raise SourceStalled(
                f"{self.spec.describe()}: no data for {self.read_timeout:g} s (read timeout)"
            ) from None
        except av.error.EOFError:
            return
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceUnavailable(f"{self.spec.describe()}: {_reason(exc)}") from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.container.close()


class _DeviceSource(Source):
    """A V4L2 device through OpenCV's own backend (PyAV's wheel has no V4L2 input)."""

    def __init__(
        self, spec: SourceSpec, timeline: Timeline, *, open_timeout: float, read_timeout: float
    ) -> None:
        super().__init__(spec, timeline)
        started = time.monotonic()
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(read_timeout * 1000),
        ]  # fmt: skip
        self.capture = cv2.VideoCapture(spec.location, cv2.CAP_V4L2, params)
        if not self.capture.isOpened():
            self.capture.release()
            raise SourceUnavailable(
                f"cannot open video device {spec.location}: busy, not a capture device, or "
                "no permission (the video group)"
            )
        self.opened_s = time.monotonic() - started
        self.width = int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.read_timeout = read_timeout

    def __iter__(self) -> Iterator[Frame]:
        self.timeline.restart()
        while True:
            if not self.capture.grab():
                raise SourceStalled(
                    f"{self.spec.location}: no frame within {self.read_timeout:g} s, or the "
                    "device went away"
                )
            self.decoded += 1
            msec = self.capture.get(cv2.CAP_PROP_POS_MSEC)
            pts = msec / 1000.0 if math.isfinite(msec) and msec > 0 else None
            if pts is None:
                self.pts_missing += 1
            yield _CvFrame(self.timeline.ts(pts), pts, self.capture)

    def close(self) -> None:
        self.capture.release()


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return re.sub(r"\s*:\s*'[^']*'$", "", str(text))  # FFmpeg appends the URL: redacted above


@contextlib.contextmanager
def open_source(
    spec: SourceSpec,
    *,
    open_timeout: float = 10.0,
    read_timeout: float = 5.0,
    options: Mapping[str, str] | None = None,
    realtime: bool | None = None,
    timeline: Timeline | None = None,
) -> Iterator[Source]:
    """Open `spec`; yield the open source; close it on exit. `realtime` paces a file at
    its timestamps (default: a file is read as fast as it decodes); `options` are FFmpeg
    demuxer/protocol options for this source alone. Keep one `timeline` across reopens of
    one camera so its clock stays continuous. Raises SourceUnavailable when it cannot be
    opened; iteration raises SourceStalled after `read_timeout` s without data and ends
    at the end of the stream."""
    timeline = timeline or Timeline()
    source: Source
    if spec.kind == "device":
        source = _DeviceSource(spec, timeline, open_timeout=open_timeout, read_timeout=read_timeout)
    else:
        source = _AvSource(
            spec,
            timeline,
            open_timeout=open_timeout,
            read_timeout=read_timeout,
            options=options or {},
            realtime=bool(realtime) and spec.kind == "file",
        )
    try:
        yield source
    finally:
        source.close()
