"""Delivery modes (`?delivery=live|lossless`, service/api/ws.py), against a real `gad serve`.

The same burst — the demo test video's 160 feature rows sent as fast as the socket takes
them, the labels read meanwhile — to a replica whose frame queue holds 2 frames and whose
head waits 30 ms per frame to fill a batch (GAD_MAX_WAIT_MS: one stream never fills one),
so the worker is far slower than the sender on any machine:

- lossless: every frame gets its label, in order, none dropped, each equal to `/classify`
  of the same rows (the uninterrupted offline run);
- live: frames are dropped, each one answered with a `dropped` notice and counted.

A lossless client that never reads is closed like any other (tests/service/test_faults.py,
the stuck-client test, runs in both modes); a resume burst after a replica kill is the
`burst` case of test_faults.py's failover.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import numpy as np
import pytest
import websockets
from starlette.websockets import WebSocketDisconnect

from bench.launch import Server, served
from tests.service.streaming import client, demo_features, features_message, send_burst
from tests.service.test_faults import BASE_ENV, metric

FPS = 4.0
ENV = BASE_ENV | {"GAD_QUEUE_DEPTH": "2", "GAD_MAX_WAIT_MS": "30"}


@pytest.fixture(scope="module")
def package(demo_model: Path) -> Path:
    from gad.demo import package_dir

    return package_dir(demo_model)


@pytest.fixture(scope="module")
def rows(demo_model: Path) -> np.ndarray:
    return demo_features(demo_model)


@pytest.fixture(scope="module")
def server(package: Path) -> Iterator[Server]:
    with served(package, env=ENV) as running:
        yield running


@pytest.fixture(scope="module")
def offline(server: Server, rows: np.ndarray) -> list[dict]:
    """`/classify` of the same rows: what an uninterrupted, lossless stream must give."""
    body = {"fps": FPS, "data": base64.b64encode(rows.astype("<f4").tobytes()).decode()}
    response = httpx.post(f"{server.url}/classify", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["frames"]


def burst(server: Server, stream: str, rows: np.ndarray, query: str) -> tuple[dict, list[dict]]:
    """The `ready` message and every reply (through `end`) of one burst."""

    async def main() -> tuple[dict, list[dict]]:
        async with websockets.connect(f"{server.ws_url}/v1/streams/{stream}{query}") as ws:
            ready = json.loads(await ws.recv())
            return ready, await send_burst(ws, rows, FPS)

    return asyncio.run(main())


def test_a_lossless_burst_gets_every_label_in_order_equal_to_classify(
    server: Server, rows: np.ndarray, offline: list[dict]
) -> None:
    dropped_before = metric(server, "gad_frames_dropped_total", reason="queue_full")
    ready, replies = burst(server, "video-lossless", rows, "?delivery=lossless")
    assert ready["delivery"] == "lossless"
    *labels, end = replies
    assert end["type"] == "end" and end["processed"] == len(rows) == 160
    assert [m["type"] for m in labels] == ["label"] * len(rows), Counter(m["type"] for m in labels)
    assert [m["seq"] for m in labels] == [m["row"] for m in labels] == list(range(len(rows)))
    assert [m["index"] for m in labels] == [f["index"] for f in offline]
    np.testing.assert_allclose(
        [m["score"] for m in labels], [f["score"] for f in offline], atol=1e-5
    )
    assert metric(server, "gad_frames_dropped_total", reason="queue_full") == dropped_before


def test_the_same_burst_live_drops_frames_and_says_so(server: Server, rows: np.ndarray) -> None:
    dropped_before = metric(server, "gad_frames_dropped_total", reason="queue_full")
    ready, replies = burst(server, "video-live", rows, "?delivery=live")
    assert ready["delivery"] == "live"
    *answers, end = replies
    kinds = Counter(m["type"] for m in answers)
    assert end["type"] == "end" and kinds.keys() <= {"label", "dropped"}, kinds
    # Every frame answered once: a label or a drop notice. The queue holds 2 frames and the
    # worker takes 30 ms or more a frame, so a burst of 160 overflows it.
    assert sorted(m["seq"] for m in answers) == list(range(len(rows)))
    assert kinds["dropped"] > 0 and kinds["label"] == end["processed"]
    labels = [m for m in answers if m["type"] == "label"]
    assert [m["seq"] for m in labels] == sorted(m["seq"] for m in labels)  # in order
    # Frames carry capture times (seq / fps): the gap a drop leaves may be filled by
    # repeating the last row (short gaps) or not (long ones), so rows only increase.
    rows_seen = [m["row"] for m in labels]
    assert rows_seen[0] == 0 and rows_seen == sorted(set(rows_seen))
    counted = metric(server, "gad_frames_dropped_total", reason="queue_full") - dropped_before
    assert counted == kinds["dropped"]


# --- the parameter (in-process app: no network needed) ------------------------------------


def test_ready_says_the_delivery_mode_live_by_default(package: Path, rows: np.ndarray) -> None:
    modes = {"": "live", "?delivery=live": "live", "?delivery=lossless": "lossless"}
    with client(package) as http:
        for query, mode in modes.items():
            with http.websocket_connect(f"/v1/streams/mode{query}") as ws:
                assert ws.receive_json()["delivery"] == mode
                ws.send_json(features_message(rows[0], seq=0, ts=0.0))
                assert ws.receive_json()["type"] == "label"
                ws.send_json({"type": "end"})
                assert ws.receive_json()["type"] == "end"


@pytest.mark.parametrize("value", ["", "LOSSLESS", "lossless ", "fast", "x" * 500])
def test_an_unknown_delivery_mode_is_refused_with_a_reason(package: Path, value: str) -> None:
    url = f"/v1/streams/cam?{urlencode({'delivery': value})}"
    with (
        client(package) as http,
        http.websocket_connect(url) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_json()
    assert closed.value.code == 1008
    assert "unknown delivery" in closed.value.reason and "live or lossless" in closed.value.reason
