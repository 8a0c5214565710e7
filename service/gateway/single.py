"""`gad stream --source CAMERA`: one camera, the gateway's runner, labels printed as they
come, until Ctrl-C (or `duration_s`). A file goes through service/client.py's
`stream_video` instead (sent as fast as the server takes it, or paced with --realtime)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Any

from runtime.sources import SourceSpec
from service.gateway.camera import CameraRunner
from service.gateway.config import Camera, CameraFields
from service.wire import ServerMessage


async def stream_camera(
    url: str,
    source: SourceSpec,
    *,
    token: str | None = None,
    fps: float | None = None,
    quality: int = 80,
    duration_s: float | None = None,
    on_message: Callable[[ServerMessage], None] | None = None,
) -> dict[str, Any]:
    """Stream `source` to the stream `url` (ws://HOST/v1/streams/ID) live, reconnecting
    both ways, until interrupted or `duration_s` has passed; the camera's counters."""
    stream = url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    camera = Camera(
        id=stream or "camera",
        source=source,
        url=url,
        stream=stream,
        token=token,
        fields=CameraFields(fps=fps, jpeg_quality=quality),
    )
    runner = CameraRunner(camera, on_message=on_message)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, runner.stop)
    task = asyncio.create_task(runner.run())
    if duration_s is not None:
        loop.call_later(duration_s, runner.stop)
    await task
    return runner.status.as_dict()
