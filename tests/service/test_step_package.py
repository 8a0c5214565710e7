"""A streaming package served: one step per frame against each stream's K/V rings, equal
to the same recurrence offline, on a stream, on /classify and after a resume elsewhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtime.stepping import StepEngine
from tests.model.helpers import FEATURE_DIM
from tests.service.streaming import client, features_message, stream_rows

FPS = 4.0


@pytest.fixture(scope="module")
def package(streaming_package: tuple[Path, Path]) -> Path:
    return streaming_package[1]


def offline(package: Path, rows: np.ndarray) -> np.ndarray:
    """The recurrence over the whole clip (checked against PyTorch at export)."""
    engine = StepEngine.load(package, providers=("cpu",))
    logits = engine.replay(rows)[1]
    shifted = np.exp(logits - logits.max(1, keepdims=True))
    return shifted / shifted.sum(1, keepdims=True)


def rows_of(seed: int, count: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, FEATURE_DIM)).astype(np.float32)


def test_a_stream_steps_every_frame_as_offline(package: Path) -> None:
    rows = rows_of(0, 30)
    with client(package) as http, http.websocket_connect("/v1/streams/s1") as ws:
        ready = ws.receive_json()
        assert ready["type"] == "ready" and ready["window"] is None
        replies = stream_rows(ws, rows, FPS)
        info = http.get("/v1/models").json()["models"][0]
        stepper = http.app.state.served.frames
        assert "s1" in stepper
        ws.send_json({"type": "end"})
        assert ws.receive_json()["type"] == "end"
        assert "s1" not in stepper  # an ended stream's rings are dropped
    expected = offline(package, rows)
    assert [r["row"] for r in replies] == list(range(30))
    assert [r["index"] for r in replies] == expected.argmax(1).tolist()
    np.testing.assert_allclose([r["score"] for r in replies], expected.max(1), atol=1e-5)
    assert info["attention"] == "streaming" and info["streams"]
    assert info["step"] == {"window": 6, "replay_rows": 2 * 5 + 1}


def test_classify_runs_the_same_recurrence(package: Path) -> None:
    rows = rows_of(1, 25)
    with client(package) as http:
        body = http.post("/v1/classify", json={"fps": FPS, "features": rows.tolist()}).json()
    expected = offline(package, rows)
    assert [f["index"] for f in body["frames"]] == expected.argmax(1).tolist()
    np.testing.assert_allclose([f["score"] for f in body["frames"]], expected.max(1), atol=1e-5)


def test_carried_and_repeated_frames_keep_the_recurrence(package: Path) -> None:
    rows = rows_of(2, 6)
    with client(package) as http, http.websocket_connect("/v1/streams/gaps") as ws:
        ws.receive_json()
        replies = []
        # 0, 0.125 (carried: twice the fps), 0.25, then a gap: 1.0 repeats rows to fill it
        for i, ts in enumerate([0.0, 0.125, 0.25, 1.0]):
            ws.send_json(features_message(rows[i], seq=i, ts=ts))
            replies.append(ws.receive_json())
    assert [r["carried"] for r in replies] == [False, True, False, False]
    assert replies[1]["label"] == replies[0]["label"]
    # rows in the cache: r0, r2, r2, r2, r3 (the gap of 0.5 s repeats the last row twice)
    cached = np.stack([rows[0], rows[2], rows[2], rows[2], rows[3]])
    expected = offline(package, cached)
    assert [r["row"] for r in replies if not r["carried"]] == [0, 1, 4]
    assert replies[3]["index"] == int(expected[-1].argmax())
    assert replies[3]["score"] == pytest.approx(float(expected[-1].max()), abs=1e-5)


def test_a_resume_on_another_replica_replays_the_cached_rows_exactly(
    package: Path, redis_url: str, redis_prefix: str
) -> None:
    rows = rows_of(3, 40)
    shared = {"redis_url": redis_url, "redis_prefix": redis_prefix}
    with client(package, **shared) as first, first.websocket_connect("/v1/streams/r") as ws:
        ws.receive_json()
        before = stream_rows(ws, rows[:23], FPS)
    with client(package, **shared) as second, second.websocket_connect("/v1/streams/r") as ws:
        ready = ws.receive_json()
        assert ready["resumed"] and ready["rows"] == 23
        after = stream_rows(ws, rows[23:], FPS, start=23)
    expected = offline(package, rows)  # as if it had never moved
    replies = before + after
    assert [r["index"] for r in replies] == expected.argmax(1).tolist()
    np.testing.assert_allclose([r["score"] for r in replies], expected.max(1), atol=1e-5)


def test_the_torch_backend_steps_the_checkpoint_alike(
    streaming_package: tuple[Path, Path],
) -> None:
    checkpoint, package = streaming_package
    rows = rows_of(4, 20)
    settings = {"backend": "torch", "checkpoint": checkpoint, "torch_dtype": "float32"}
    with client(package, **settings) as http, http.websocket_connect("/v1/streams/t") as ws:
        ready = ws.receive_json()
        replies = stream_rows(ws, rows, FPS)
        providers = http.get("/v1/models").json()["models"][0]["providers"]
    assert providers == ["torch:cpu"] and ready["type"] == "ready"
    expected = offline(package, rows)
    assert [r["index"] for r in replies] == expected.argmax(1).tolist()
    np.testing.assert_allclose([r["score"] for r in replies], expected.max(1), atol=1e-4)
