"""GStreamer's RTSP server as a child process on 127.0.0.1: the cameras of the gateway
benchmark (bench/gateway.py) and of the gateway tests (tests/gateway/). The server itself is
bench/rtsp_server.py, run by the system python3 (which has `gi`; the venv never imports it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.launch import free_port

SCRIPT = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"
SETUP_HINT = (
    "the RTSP server needs GStreamer's RTSP server for the system python3: as root, "
    "apt-get install gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-good "
    "gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad gstreamer1.0-libav (make setup does it)"
)


def rtsp_available() -> str | None:
    """None when the RTSP server can run here, else why not."""
    if not os.path.exists(SYSTEM_PYTHON):
        return f"no {SYSTEM_PYTHON}"
    check = "import gi; gi.require_version('GstRtspServer', '1.0')"
    check += "; from gi.repository import GstRtspServer"
    done = subprocess.run([SYSTEM_PYTHON, "-c", check], capture_output=True, text=True)
    return None if done.returncode == 0 else done.stderr.strip().splitlines()[-1]


class RtspServer:
    """rtsp://127.0.0.1:PORT/cam0 … playing the videos in real time (each client session from
    the start); kill() and start() again on the same port (a camera that drops and comes
    back), pause() and resume() (SIGSTOP/SIGCONT: a camera whose socket stays open but
    sends nothing). `h264`: the videos are H.264 in MP4, sent without re-encoding."""

    def __init__(self, videos: list[Path], port: int | None = None, *, h264: bool = False) -> None:
        self.videos = videos
        self.port = port or free_port()
        self.h264 = h264
        self.process: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkstemp(prefix="gad-rtsp-", suffix=".log")[1])

    def url(self, index: int = 0) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam{index}"

    def start(self) -> RtspServer:
        command = [SYSTEM_PYTHON, str(SCRIPT), "--port", str(self.port)]
        for video in self.videos:
            command += ["--video", str(video)]
        if self.h264:
            command.append("--h264")
        deadline = time.monotonic() + 15
        while True:
            with self.log.open("w") as log:
                self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            while self.process.poll() is None and "ready" not in self.log.read_text():
                time.sleep(0.05)
            if self.process.poll() is None:
                return self
            if time.monotonic() > deadline:  # the port may linger a moment after a kill
                raise RuntimeError(f"RTSP server did not start: {self.log.read_text()}")
            time.sleep(0.3)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
        self.kill()
        self.log.unlink(missing_ok=True)


@contextlib.contextmanager
def rtsp_server(videos: list[Path], *, h264: bool = False) -> Iterator[RtspServer]:
    server = RtspServer(videos, h264=h264).start()
    try:
        yield server
    finally:
        server.close()
