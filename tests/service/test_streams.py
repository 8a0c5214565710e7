import numpy as np
import pytest
from starlette.websockets import WebSocketDisconnect

from tests.model.helpers import FEATURE_DIM
from tests.service.streaming import client, features_message, offline_scores, stream_rows

FPS = 4.0


@pytest.fixture(scope="module")
def package(tiny_package):
    return tiny_package[1]


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return np.random.default_rng(7).normal(size=(14, FEATURE_DIM)).astype(np.float32)


def test_ready_then_one_label_per_frame_matching_offline(package, rows) -> None:
    with client(package) as http, http.websocket_connect("/v1/streams/cam-1") as ws:
        ready = ws.receive_json()
        assert ready["type"] == "ready" and ready["fps"] == FPS and not ready["resumed"]
        assert ready["accepts"] == ["features"] and len(ready["classes"]) == 6
        replies = stream_rows(ws, rows, FPS)
        ws.send_json({"type": "end"})
        end = ws.receive_json()
    expected = offline_scores(package, rows)
    assert [r["row"] for r in replies] == list(range(len(rows)))
    assert [r["index"] for r in replies] == expected.argmax(1).tolist()
    np.testing.assert_allclose([r["score"] for r in replies], expected.max(1), atol=1e-5)
    assert all(not r["carried"] and len(r["top"]) == 3 for r in replies)
    assert end == {"type": "end", "stream": "cam-1", "rows": 14, "processed": 14, "carried": 0}


def test_frames_faster_than_fps_are_carried_over(package, rows) -> None:
    with client(package) as http, http.websocket_connect("/v1/streams/fast") as ws:
        ws.receive_json()
        replies = []
        for i, row in enumerate(rows[:8]):  # 8 fps into a 4 fps model
            ws.send_json(features_message(row, seq=i, ts=i / (2 * FPS)))
            replies.append(ws.receive_json())
    assert [r["carried"] for r in replies] == [False, True] * 4
    for taken, carried in zip(replies[::2], replies[1::2], strict=True):
        assert carried["label"] == taken["label"] and carried["seq"] == taken["seq"] + 1
    # The rows taken are the even frames: their labels are the offline labels of those rows.
    expected = offline_scores(package, rows[:8:2]).argmax(1)
    assert [r["index"] for r in replies[::2]] == expected.tolist()


def test_bad_messages_get_errors_and_the_stream_goes_on(package, rows) -> None:
    with client(package) as http, http.websocket_connect("/v1/streams/messy") as ws:
        ws.receive_json()
        ws.send_text("{not json")
        assert ws.receive_json()["code"] == "message"
        ws.send_json({"type": "teleport"})
        assert "unknown message type" in ws.receive_json()["error"]
        ws.send_json(features_message(np.zeros(FEATURE_DIM + 3), seq=0, ts=0.0))
        assert "float32 values" in ws.receive_json()["error"]
        ws.send_json(features_message(np.full(FEATURE_DIM, np.nan), seq=0, ts=0.0))
        assert "NaN" in ws.receive_json()["error"]
        ws.send_bytes(b"\x89PNG not really")  # an image, but this model takes features
        assert ws.receive_json()["code"] == "frame"
        ws.send_json({"type": "features", "seq": -1, "data": ""})
        assert "seq" in ws.receive_json()["error"]
        good = stream_rows(ws, rows[:3], FPS)
        ws.send_json(features_message(rows[3], seq=1, ts=3 / FPS))  # a replayed seq
        replay = ws.receive_json()
    assert [r["row"] for r in good] == [0, 1, 2]  # nothing bad became a row
    assert replay["code"] == "seq" and "already processed" in replay["error"]


@pytest.mark.parametrize("stream_id", ["bad%20id", "x" * 129, ".hidden", "%C3%A9t%C3%A9"])
def test_stream_ids_are_checked(package, stream_id: str) -> None:
    with (
        client(package) as http,
        http.websocket_connect(f"/v1/streams/{stream_id}") as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_json()
    assert closed.value.code == 1008 and "stream id" in closed.value.reason
