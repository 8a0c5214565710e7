"""The live demo page (`GET /`, service/static/index.html): served, self-contained, its
script parses, and the messages it sends and reads are the ones the service speaks."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from service.app import create_app
from service.settings import Settings

END = '{"type":"end"}'  # the page sends exactly this text
# The fields the page reads from each server message (service/session.py, service/api/ws.py).
READY_FIELDS = {"stream", "model", "classes", "background_index", "fps", "window", "accepts"}
READY_FIELDS |= {"resumed", "rows", "next_seq"}
LABEL_FIELDS = {"seq", "row", "t", "label", "index", "score", "top", "carried", "latency_ms"}
END_FIELDS = {"stream", "rows", "processed", "carried"}


@pytest.fixture(scope="module")
def package(demo_model: Path) -> Path:
    from gad.demo import package_dir

    return package_dir(demo_model)


@pytest.fixture(scope="module")
def http(package: Path) -> Iterator[TestClient]:
    app = create_app(Settings(model=package, providers=("cpu",), log_json=False))
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def page(http: TestClient) -> str:
    response = http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def scripts(html: str) -> list[str]:
    return re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S | re.I)


def test_page_speaks_the_stream_protocol(page: str) -> None:
    assert "/v1/streams/" in page
    assert '"gad.v1"' in page and '"gad.key."' in page  # subprotocols: version, then key
    assert END in page and ".send(END_MESSAGE)" in page
    assert '"frame"' in page and "toBlob(" in page and '"image/jpeg"' in page
    assert "getUserMedia" in page and "currentTime" in page
    assert '"/classify"' in page and "Bearer " in page
    # a clip model's answers (the /classify "procedure" fields) are shown when present
    assert "body.procedure" in page and all(k in page for k in ("proc.step", "proc.next_step"))
    for code in (1008, 1009, 1012, 1013):
        assert f"{code}:" in page, f"close code {code} has no message"


def test_page_is_self_contained(page: str) -> None:
    assert not re.search(r"https?://", page), "the page must not load anything from elsewhere"
    assert not re.search(r"<script\b[^>]*\bsrc\s*=", page, flags=re.I)
    for link in re.findall(r"<link\b[^>]*>", page, flags=re.I):
        assert 'href="data:' in link, f"{link}: only data: links (no favicon request)"
    assert "@import" not in page and "url(" not in page
    assert "<script" in page and len(scripts(page)) == 1


def test_page_script_parses(page: str, tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: it checks the demo page's JavaScript (apt install nodejs)")
    (code,) = scripts(page)
    source = tmp_path / "page.js"
    source.write_text(code)
    result = subprocess.run(
        [node, "--check", str(source)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def jpeg_frame(seq: int, ts: float) -> dict:
    """A frame message as the page builds it: a 320-px canvas, JPEG quality 0.8, base64."""
    picture = np.full((240, 320, 3), 235, np.uint8)
    cv2.line(picture, (160, 60), (160, 180), (20, 20, 20), 6)
    cv2.circle(picture, (160, 45), 16, (20, 20, 20), 4)
    ok, data = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return {"type": "frame", "seq": seq, "ts": ts, "image": base64.b64encode(data).decode()}


def test_page_messages_get_the_replies_it_reads(http: TestClient) -> None:
    t0 = round(time.time(), 6)  # the camera's capture clock: wall-clock seconds
    with http.websocket_connect("/v1/streams/web-0a1b2c3d", subprotocols=["gad.v1"]) as ws:
        assert ws.accepted_subprotocol == "gad.v1"
        ready = ws.receive_json()
        assert ready["type"] == "ready" and ready.keys() >= READY_FIELDS
        assert not ready["resumed"] and "image" in ready["accepts"] and ready["fps"] == 4
        assert {"name", "version"} <= ready["model"].keys()
        replies = []
        for seq, dt in enumerate((0.0, 0.3, 0.4)):  # the third lands in the second's slot
            ws.send_json(jpeg_frame(seq, t0 + dt))
            replies.append(ws.receive_json())
    first, second, carried = replies
    for label in replies:
        assert label["type"] == "label" and label.keys() >= LABEL_FIELDS
        assert label["label"] in ready["classes"] and len(label["top"]) == 3
    assert [first["row"], second["row"]] == [0, 1] and not second["carried"]
    assert carried["carried"] and carried["seq"] == 2 and carried["row"] == 1

    # Reconnect with the same id: the window resumes ("resumed, N rows"), seq goes on.
    with http.websocket_connect("/v1/streams/web-0a1b2c3d", subprotocols=["gad.v1"]) as ws:
        ready = ws.receive_json()
        assert ready["resumed"] and ready["rows"] == 2
        assert ready["next_seq"] in (2, 3)  # the page sends max(its seq, next_seq)
        ws.send_json(jpeg_frame(3, t0 + 0.6))
        assert ws.receive_json()["row"] == 2
        ws.send_text(END)  # Stop
        end = ws.receive_json()
        assert end["type"] == "end" and end.keys() >= END_FIELDS and end["rows"] == 3
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1000


def test_page_api_key_as_subprotocol(package: Path) -> None:
    settings = Settings(model=package, providers=("cpu",), log_json=False, api_keys=("k-1",))
    with TestClient(create_app(settings)) as http:
        protocols = ["gad.v1", "gad.key.k-1"]
        with http.websocket_connect("/v1/streams/web-key", subprotocols=protocols) as ws:
            assert ws.accepted_subprotocol == "gad.v1"  # the key is never echoed back
            assert ws.receive_json()["type"] == "ready"
        with http.websocket_connect("/v1/streams/web-key?token=k-1") as ws:  # keys with '/', '='
            assert ws.receive_json()["type"] == "ready"
        with (
            http.websocket_connect("/v1/streams/web-key", subprotocols=["gad.v1"]) as ws,
            pytest.raises(WebSocketDisconnect) as refused,
        ):
            ws.receive_json()
        assert refused.value.code == 1008 and "API key" in refused.value.reason
