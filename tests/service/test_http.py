import base64
import json

import numpy as np
import pytest
from starlette.websockets import WebSocketDisconnect

from tests.model.helpers import FEATURE_DIM
from tests.service.events_support import RUNS
from tests.service.streaming import client, features_message, offline_scores

FPS = 4.0
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def package(tiny_package):
    return tiny_package[1]


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return np.random.default_rng(11).normal(size=(12, FEATURE_DIM)).astype(np.float32)


def test_ops_endpoints(package) -> None:
    with client(package) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["cache"] == "ok"
        (model,) = http.get("/v1/models").json()["models"]
        assert model["fps"] == FPS and model["feature_dim"] == FEATURE_DIM
        assert model["window"] == {"long_frames": 4, "short_frames": 4, "long_stride": 1}


def test_classify_features_matches_offline(package, rows) -> None:
    with client(package, **RUNS) as http:  # the plain-runs rule: every run of one label
        nested = http.post("/classify", json={"fps": FPS, "features": rows.tolist()})
        packed = http.post(
            "/v1/classify",
            json={"fps": FPS, "data": base64.b64encode(rows.astype("<f4").tobytes()).decode()},
        )
    assert nested.status_code == 200, nested.text
    body = nested.json()
    expected = offline_scores(package, rows)
    assert [f["index"] for f in body["frames"]] == expected.argmax(1).tolist()
    assert [f["t"] for f in body["frames"]] == [i / FPS for i in range(12)]
    assert packed.json()["frames"] == body["frames"]
    labels = expected.argmax(1)
    assert body["segments"]
    for seg in body["segments"]:
        start, end = round(seg["start"] * FPS), round(seg["end"] * FPS)
        assert set(labels[start:end].tolist()) == {seg["index"]} and seg["index"] != 0
    assert body["clip"]["label"] in body["model"] or body["clip"]["index"] >= 0


def test_classify_resamples_features_at_another_fps(package, rows) -> None:
    with client(package) as http:
        doubled = np.repeat(rows, 2, axis=0)  # the same clip at 8 fps
        body = http.post("/classify", json={"fps": 2 * FPS, "features": doubled.tolist()}).json()
    expected = offline_scores(package, rows).argmax(1)
    assert [f["index"] for f in body["frames"]] == expected.tolist()


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({"fps": FPS, "features": [[1.0] * (FEATURE_DIM + 1)]}, 422, "features must be"),
        ({"fps": 0, "features": [[1.0] * FEATURE_DIM]}, 422, "fps"),
        ({"fps": "fast", "features": []}, 422, "'fps' must be a number"),
        ({"fps": FPS, "features": [[float("nan")] * FEATURE_DIM]}, 422, "NaN"),
        ({"fps": FPS}, 422, "send 'features'"),
        ({"fps": FPS, "data": "@@@"}, 422, "base64"),
        ({"fps": FPS, "features": [[1.0] * FEATURE_DIM] * 8000}, 413, "over the"),
    ],
)
def test_classify_refuses_bad_clips(package, payload, status: int, message: str) -> None:
    with client(package, max_clip_seconds=600) as http:
        body = json.dumps(payload)  # NaN as JavaScript writes it
        response = http.post("/classify", content=body, headers=JSON)
    assert response.status_code == status and message in response.json()["detail"]


def test_classify_size_limits_and_bad_json(package) -> None:
    with client(package, max_clip_bytes=2048) as http:
        big = http.post("/classify", content=b"x" * 4096, headers={"content-type": "video/mp4"})
        assert big.status_code == 413
        chunks = iter([b"x" * 1024] * 4)  # no Content-Length: counted as it streams
        chunked = http.post("/classify", content=chunks, headers={"content-type": "video/mp4"})
        assert chunked.status_code == 413
        bad = http.post("/classify", content=b"{", headers={"content-type": "application/json"})
        assert bad.status_code == 422 and "not valid JSON" in bad.json()["detail"]
        nested = "[" * 5000 + "]" * 5000
        deep = http.post(
            "/classify", content=nested[:2000], headers={"content-type": "application/json"}
        )
        assert deep.status_code in (413, 422)
        junk = http.post("/classify", content=b"not a video", headers={"content-type": "video/mp4"})
        assert junk.status_code == 422 and "no frame encoder" in junk.json()["detail"]


def test_auth_on(package, rows) -> None:
    with client(package, api_keys="key-a,key-b") as http:
        assert http.get("/v1/models").status_code == 401
        assert http.get("/v1/models", headers={"Authorization": "Bearer nope"}).status_code == 401
        ok = http.get("/v1/models", headers={"Authorization": "Bearer key-a"})
        assert ok.status_code == 200
        assert http.get("/healthz").status_code == 200  # ops routes: open unless configured
        with (
            http.websocket_connect("/v1/streams/cam") as ws,
            pytest.raises(WebSocketDisconnect) as no,
        ):
            ws.receive_json()
        assert no.value.code == 1008
        for how in (
            {"url": "/v1/streams/cam?token=key-a"},
            {"url": "/v1/streams/cam", "headers": {"Authorization": "Bearer key-a"}},
            {"url": "/v1/streams/cam", "subprotocols": ["gad.v1", "gad.key.key-a"]},
        ):
            with http.websocket_connect(**how) as ws:
                assert ws.receive_json()["type"] == "ready"
                ws.send_json(features_message(rows[0], seq=0, ts=0.0))
                assert ws.receive_json()["type"] == "label"
                ws.send_json({"type": "end"})
                assert ws.receive_json()["type"] == "end"
        # Tenants: key-b's "cam" is not key-a's "cam".
        with http.websocket_connect("/v1/streams/cam?token=key-a") as ws:
            ws.receive_json()
            ws.send_json(features_message(rows[0], seq=0, ts=0.0))
            ws.receive_json()
        with http.websocket_connect("/v1/streams/cam?token=key-b") as ws:
            assert not ws.receive_json()["resumed"]
        with http.websocket_connect("/v1/streams/cam?token=key-a") as ws:
            assert ws.receive_json()["resumed"]


def test_metrics_after_traffic(package, rows) -> None:
    with client(package) as http:
        with http.websocket_connect("/v1/streams/metered") as ws:
            ws.receive_json()
            for i, row in enumerate(rows[:5]):
                ws.send_json(features_message(row, seq=i, ts=i / FPS))
                ws.receive_json()
        text = http.get("/metrics").text
    assert "gad_frames_processed_total 5.0" in text
    assert 'gad_frame_latency_seconds_bucket{le="0.001"}' in text
    assert "gad_frame_latency_seconds_count 5.0" in text
    assert "gad_batch_size_count" in text and "gad_inference_seconds_sum" in text
    assert "gad_model_info{" in text


def test_stream_limit_closes_with_1013(package) -> None:
    with client(package, max_streams=1) as http, http.websocket_connect("/v1/streams/one") as first:
        first.receive_json()
        with (
            http.websocket_connect("/v1/streams/two") as second,
            pytest.raises(WebSocketDisconnect) as full,
        ):
            second.receive_json()
    assert full.value.code == 1013


def test_oversized_message_closes_with_1009(package) -> None:
    with (
        client(package, max_message_bytes=1024) as http,
        http.websocket_connect("/v1/streams/big") as ws,
    ):
        ws.receive_json()
        ws.send_bytes(b"\0" * 4096)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1009


def test_a_frame_over_the_frame_limit_is_refused_binary_or_base64_alike(demo_model) -> None:
    """One rule for a frame's size (decode_image's): the frame is refused with an error
    message and the stream goes on, whether it came as bytes or as base64 JSON; only a
    message over GAD_MAX_MESSAGE_BYTES closes the socket (1009, above)."""
    from gad.demo import package_dir

    huge = b"\xff\xd8" + b"\0" * 4096
    with (
        client(package_dir(demo_model), max_frame_bytes=2048) as http,
        http.websocket_connect("/v1/streams/huge-frame") as ws,
    ):
        ws.receive_json()
        ws.send_bytes(huge)
        binary = ws.receive_json()
        image = base64.b64encode(huge).decode()
        ws.send_text(json.dumps({"type": "frame", "seq": 1, "ts": 0.5, "image": image}))
        text = ws.receive_json()
        ws.send_text(json.dumps({"type": "end"}))
        end = ws.receive_json()
    for refused, seq in ((binary, 0), (text, 1)):
        assert refused["type"] == "error" and refused["code"] == "frame", refused
        assert refused["seq"] == seq and "over the 2048-byte limit" in refused["error"]
    assert end["type"] == "end" and end["rows"] == 0


def test_classify_answers_503_with_retry_after_when_busy(package, rows) -> None:
    with client(package, max_classify=1) as http:
        http.app.state.classifying = 1  # one clip in progress
        busy = http.post("/classify", json={"fps": FPS, "features": rows.tolist()})
        http.app.state.classifying = 0
        free = http.post("/classify", json={"fps": FPS, "features": rows.tolist()})
    assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
    assert free.status_code == 200


def test_torch_backend_serves_the_checkpoint_with_the_same_labels(tiny_package, rows) -> None:
    checkpoint, package = tiny_package
    replies = {}
    for backend in ("onnx", "torch"):
        settings = {"backend": backend, "checkpoint": checkpoint, "torch_dtype": "float32"}
        with client(package, **settings) as http:
            (model,) = http.get("/v1/models").json()["models"]
            body = http.post("/classify", json={"fps": FPS, "features": rows.tolist()}).json()
            replies[backend] = (model["providers"], [f["index"] for f in body["frames"]])
    assert replies["torch"][0] == ["torch:cpu"]
    assert replies["onnx"][0] == ["CPUExecutionProvider"]
    assert replies["torch"][1] == replies["onnx"][1]
