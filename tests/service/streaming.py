"""Helpers for the service tests: an app on a package, feature messages, offline labels,
the demo video's feature rows and a burst of them over a real WebSocket."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from gad.backends import open_backend
from runtime.engine import OnnxEngine
from runtime.manifest import read_package
from runtime.windowing import build_windows
from service.app import create_app
from service.settings import Settings


@contextlib.contextmanager
def client(package: Path, **settings: Any) -> Iterator[TestClient]:
    config = Settings(model=package, providers=("cpu",), log_json=False, **settings)
    app = create_app(config, backend=open_backend(config))  # as `gad serve` composes it
    with TestClient(app) as test_client:
        yield test_client


def features_message(row: np.ndarray, seq: int | None = None, ts: float | None = None) -> dict:
    message: dict[str, Any] = {
        "type": "features",
        "data": base64.b64encode(np.asarray(row, "<f4").tobytes()).decode(),
    }
    if seq is not None:
        message["seq"] = seq
    if ts is not None:
        message["ts"] = ts
    return message


def offline_scores(package: Path, rows: np.ndarray) -> np.ndarray:
    """What `gad eval` / `/classify` compute: every frame's window, one engine."""
    pkg = read_package(package)
    engine = OnnxEngine.load(pkg, providers=["cpu"])
    windows, mask = build_windows(rows, np.arange(len(rows)), pkg.window)
    return engine.classify(windows, mask)


def stream_rows(ws, rows: np.ndarray, fps: float, *, start: int = 0) -> list[dict]:
    """Send rows as feature frames at exactly `fps`; return the label replies."""
    replies = []
    for i, row in enumerate(rows, start=start):
        ws.send_json(features_message(row, seq=i, ts=i / fps))
        replies.append(ws.receive_json())
    return replies


def demo_features(demo_model: Path) -> np.ndarray:
    """The demo test video's real feature rows (lossless: no image codec in the way)."""
    from tests.service.test_demo_service import rendered_test_video

    video, _ = rendered_test_video(demo_model)
    path = demo_model / "features" / "rgb_efficientnet_lite0" / f"{video.stem}.npy"
    return np.load(path).astype(np.float32)


async def send_burst(ws, rows: np.ndarray, fps: float, *, start: int = 0) -> list[dict]:
    """Send rows as feature frames (seq `start`...) as fast as the socket takes them, then
    `end`, reading meanwhile; return every reply up to and including the server's `end`."""

    async def send() -> None:
        for seq, row in enumerate(rows, start=start):
            await ws.send(json.dumps(features_message(row, seq=seq, ts=seq / fps)))
        await ws.send(json.dumps({"type": "end"}))

    sender = asyncio.create_task(send())
    replies = []
    try:
        async for raw in ws:
            replies.append(json.loads(raw))
            if replies[-1]["type"] == "end":
                break
        await sender
    finally:
        sender.cancel()
    return replies
