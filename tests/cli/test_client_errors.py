"""Client commands fail with one line and a hint, never a traceback: the server not running,
a wrong URL, a refused key, a closed stream, no answer (gad/cli.py, service/client.py's
failure_message). And what `gad stream` sends by default: JPEG, at most 640 pixels wide.
The refused key against a real server: tests/service/test_quiet_start.py."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosedError, InvalidStatus, InvalidURI
from websockets.frames import Close
from websockets.http11 import Response

from bench.launch import free_port
from gad.cli import build_parser, connection_failure, main
from gad.commands.stream import send_width
from service.client import DEFAULT_SEND_WIDTH, failure_message, fit_width

GAD = [sys.executable, "-m", "gad.cli"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two seconds of 1280x720 video at 4 fps (a camera's size; the encoders see 512)."""
    path = tmp_path_factory.mktemp("clip") / "wide.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 4.0, (1280, 720))
    rng = np.random.default_rng(0)
    for _ in range(8):
        writer.write(rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8))
    writer.release()
    return path


def gad(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GAD, *args], capture_output=True, text=True, timeout=60)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("gad stream: error: ") and "hint: " in lines[0]
    return lines[0]


def test_no_server_running_is_one_line_with_a_hint(clip: Path) -> None:
    url = f"ws://127.0.0.1:{free_port()}/v1/streams/x"  # nothing listens there
    line = one_line(gad("stream", "--video", str(clip), "--url", url))
    assert f"cannot connect to {url}: connection refused" in line
    assert "is the server running? start it with `gad serve`" in line


def test_a_url_that_is_not_a_stream_url_is_one_line_with_a_hint(clip: Path) -> None:
    port = free_port()
    line = one_line(gad("stream", "--video", str(clip), "--url", f"http://127.0.0.1:{port}"))
    assert "is not a stream URL" in line
    assert f"hint: --url ws://127.0.0.1:{port}/v1/streams/cli" in line
    line = one_line(gad("stream", "--video", str(clip), "--url", "ws://no-such-host.invalid/x"))
    assert "cannot resolve the host" in line


def response(status: int, **headers: str) -> Response:
    return Response(status, "", Headers(headers))


URL = "ws://127.0.0.1:8000/v1/streams/cam"


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), "connection refused"),
        (OSError("Multiple exceptions: [Errno 111] Connect call failed"), "connection refused"),
        (socket.gaierror(-2, "Name or service not known"), "cannot resolve the host"),
        (TimeoutError(), "no answer from"),
        (InvalidURI("http://h:1", "scheme isn't ws or wss"), "not a stream URL"),
        (InvalidStatus(response(404)), "no stream endpoint at"),
        (InvalidStatus(response(403)), "the path is /v1/streams/ID"),
        (InvalidStatus(response(401, **{"WWW-Authenticate": "Bearer"})), "refused the API key"),
        (InvalidStatus(response(503)), "not ready or is shutting down"),
        (InvalidStatus(response(502)), "answered HTTP 502"),
        (ConnectionClosedError(Close(1008, "invalid API key"), None), "refused the API key"),
        (ConnectionClosedError(Close(1008, "stream id must be"), None), "refused the stream"),
        (ConnectionClosedError(Close(1012, ""), None), "restarting"),
        (ConnectionClosedError(Close(1013, "server at its 64-stream limit"), None), "busy"),
        (ConnectionClosedError(None, None), "dropped without a close"),
    ],
)
def test_every_connection_failure_has_a_line_and_a_hint(exc: BaseException, expected: str) -> None:
    message = failure_message(exc, URL)
    assert message is not None and expected in message and "hint: " in message
    assert "\n" not in message
    assert connection_failure(exc, URL) == message


def test_other_errors_are_not_dressed_up_as_connection_failures() -> None:
    # a missing file, a bug: not about the service (a GADError has its own line)
    assert connection_failure(FileNotFoundError(2, "No such file"), URL) is None
    assert connection_failure(ValueError("bug"), URL) is None
    assert connection_failure(KeyError("x"), URL) is None


def test_the_gateway_gets_one_line_for_a_bad_listen_address(tmp_path: Path) -> None:
    config = tmp_path / "cameras.yaml"
    config.write_text("cameras: [{id: door, source: rtsp://h/x}]\n")
    done = gad("gateway", str(config), "--listen", "nowhere")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "gad gateway: error: --listen nowhere: use HOST:PORT, e.g. 127.0.0.1:9100"
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = gad("gateway", str(config), "--listen", f"127.0.0.1:{port}")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"gad gateway: error: cannot listen on 127.0.0.1:{port}")
    assert "hint: another port with --listen" in last
    config.write_text("cameras: [\n")
    done = gad("gateway", str(config))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "is not valid YAML (line 2, column 1)" in done.stderr


# --- what `gad stream` sends ------------------------------------------------------------


def test_fit_width_scales_down_keeping_the_aspect_never_up() -> None:
    wide = np.zeros((720, 1280, 3), np.uint8)
    assert fit_width(wide, 640).shape == (360, 640, 3)
    assert fit_width(wide, None) is wide and fit_width(wide, 0) is wide
    small = np.zeros((144, 176, 3), np.uint8)
    assert fit_width(small, 640) is small  # never up


def test_stream_defaults_to_jpeg_at_640_and_png_at_full_size() -> None:
    parser = build_parser()
    args = parser.parse_args(["stream", "--video", "clip.mp4"])
    assert (args.format, args.quality, send_width(args)) == ("jpeg", 80, DEFAULT_SEND_WIDTH)
    assert DEFAULT_SEND_WIDTH == 640
    args = parser.parse_args(["stream", "--video", "clip.mp4", "--format", "png"])
    assert send_width(args) is None  # lossless: what /classify sees
    args = parser.parse_args(["stream", "--video", "c.mp4", "--send-width", "0"])
    assert send_width(args) is None
    args = parser.parse_args(["stream", "--video", "c.mp4", "--send-width", "320"])
    assert send_width(args) == 320
    args = parser.parse_args(["stream", "--video", "c.mp4", "--jpeg-quality", "60"])
    assert args.quality == 60
    args = parser.parse_args(["stream", "--video", "c.mp4", "--quality", "70"])  # the old name
    assert args.quality == 70


class FakeService:
    """A WebSocket server that says `ready`, keeps the frames it gets, answers `end`."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.started = threading.Event()

    async def handle(self, ws) -> None:  # type: ignore[no-untyped-def]
        await ws.send(json.dumps({
            "type": "ready", "stream": "x", "model": {"name": "fake", "version": "1"},
            "classes": ["a"], "background_index": None, "fps": 4.0, "window": None,
            "accepts": ["image"], "delivery": "lossless", "resumed": False, "rows": 0,
            "next_seq": 0,
        }))  # fmt: skip
        async for raw in ws:
            message = json.loads(raw)
            if message["type"] == "frame":
                self.frames.append(base64.b64decode(message["image"]))
            elif message["type"] == "end":
                rows = len(self.frames)
                await ws.send(json.dumps({
                    "type": "end", "stream": "x", "rows": rows, "processed": rows, "carried": 0,
                }))  # fmt: skip
                return

    def __enter__(self) -> FakeService:
        from websockets.asyncio.server import serve

        async def start() -> None:
            self.server = await serve(self.handle, "127.0.0.1", self.port, max_size=1 << 24)

        self.thread.start()
        asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def fake_service() -> Iterator[FakeService]:
    with FakeService() as service:
        yield service


def sizes(frames: list[bytes]) -> set[tuple[str, tuple[int, int]]]:
    result = set()
    for data in frames:
        with Image.open(io.BytesIO(data)) as image:
            result.add((str(image.format), image.size))
    return result


def test_gad_stream_sends_jpeg_640_wide_by_default(
    clip: Path, fake_service: FakeService, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"ws://127.0.0.1:{fake_service.port}/v1/streams/x"
    assert main(["stream", "--video", str(clip), "--url", url, "--quiet"]) == 0
    assert len(fake_service.frames) == 8
    assert sizes(fake_service.frames) == {("JPEG", (640, 360))}
    assert json.loads(capsys.readouterr().out)["sent"] == 8

    fake_service.frames.clear()
    assert main(["stream", "--video", str(clip), "--url", url, "--quiet", "--format", "png"]) == 0
    assert sizes(fake_service.frames) == {("PNG", (1280, 720))}  # lossless: full size

    fake_service.frames.clear()
    argv = ["stream", "--video", str(clip), "--url", url, "--quiet", "--send-width", "320"]
    assert main(argv) == 0
    assert sizes(fake_service.frames) == {("JPEG", (320, 180))}
