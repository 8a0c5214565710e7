"""Real servers for the gateway tests, all on 127.0.0.1: GStreamer's RTSP server (a child
process of the system python3, bench/rtsp.py, shared with `gad bench gateway`), an HTTP
MJPEG camera (a thread here, real JPEG frames over multipart/x-mixed-replace) and `gad
serve` on a fixed port (so it can be restarted under the gateway at the same URL)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

from bench.launch import free_port, stop
from bench.rtsp import SETUP_HINT, RtspServer, rtsp_available, rtsp_server

__all__ = [
    "SETUP_HINT",
    "MjpegCamera",
    "RtspServer",
    "ServiceProcess",
    "jpeg_frames",
    "redis_binary",
    "rtsp_available",
    "rtsp_server",
]


def jpeg_frames(video: Path, quality: int = 85) -> tuple[list[bytes], float]:
    """A video's frames as JPEG files, and its native fps."""
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes())
    capture.release()
    return frames, fps


class MjpegCamera:
    """An HTTP MJPEG camera: GET /video.mjpg streams the frames in a loop at their fps as
    multipart/x-mixed-replace (as IP cameras and mjpg-streamer do). `stall()` makes every
    open connection stop sending while keeping its socket open; new ones stream."""

    def __init__(self, frames: list[bytes], fps: float) -> None:
        self.frames, self.fps = frames, fps
        self.generation = 0  # connections of an older generation are stalled
        self.connections = 0
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path != "/video.mjpg":
                    self.send_error(404)
                    return
                camera.connections += 1
                generation = camera.generation
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                start, index = time.monotonic(), 0
                try:
                    while True:
                        if camera.generation != generation:
                            time.sleep(0.1)  # stalled: the socket stays open, nothing comes
                            if camera.closing:
                                return
                            continue
                        jpeg = camera.frames[index % len(camera.frames)]
                        head = (
                            f"--frame\r\nContent-Type: image/jpeg\r\n"
                            f"Content-Length: {len(jpeg)}\r\n\r\n"
                        ).encode()
                        self.wfile.write(head + jpeg + b"\r\n")
                        index += 1
                        time.sleep(max(0.0, start + index / camera.fps - time.monotonic()))
                except OSError:
                    return

        self.closing = False
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/video.mjpg"

    def stall(self) -> None:
        self.generation += 1

    def __enter__(self) -> MjpegCamera:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing = True
        self.server.shutdown()
        self.server.server_close()


class ServiceProcess:
    """`gad serve --model PACKAGE` on a fixed port: start(), stop() (SIGTERM: the service
    closes its streams with 1012), start() again at the same URL."""

    def __init__(self, package: Path, env: dict[str, str]) -> None:
        self.package, self.env = package, env
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkstemp(prefix="gad-serve-", suffix=".log")[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        command = [sys.executable, "-m", "gad.cli", "serve", "--model", str(self.package)]
        command += ["--port", str(self.port), "--log-format", "text"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=os.environ | self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 90
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gad serve did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.2)
        return self

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, timeout=15)
            self.process = None

    def close(self) -> None:
        self.stop()
        self.log.unlink(missing_ok=True)


def redis_binary() -> str | None:
    return shutil.which("redis-server")
