"""The same real clip at 320 px, 640 px and full size gets the same answer, from `/classify`
and from a stream (issue 26), on the pose demo.

The clip: opencv-doc's vtest.avi, 50-74 s (pedestrians crossing the lawn in front of the
camera), cut to 16:9 around the lawn (384×216) and scaled to a camera's 1280×720 (as
docs/real-footage/camera_clip.py does; never copied into the repository). Each size is
the full frame scaled down (INTER_AREA), as a page or `gad stream` scales before sending.

The encoder cuts the landmark crop from the frame as it came (no letterbox), so the same
person gives the model the same pixels at any size where the ROI has its 256: the answer
may differ only by what the pixels differ by. Tolerance: frame labels ≥ 80 % equal to the
full-size clip's, and the same clip label. Why 80 %: the same clip sent as JPEG at its own
full size (quality 60-92) already agrees 90-97 % with itself lossless, since the demo
model is unsure on real footage (neighbouring classes within a few points) and a few
pixels' change moves the tracked ROI; at 320 and 640 px docs/real-footage/send_size.py
measured 90-96 % (docs/pose.md, "Camera-size frames"). A person too small for the detector at a
size (vtest's whole 768×576 view scaled to 320) is not something any tolerance fixes:
docs/pose.md says what to send instead.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.video import read_frames
from tests.service.streaming import client

pytestmark = pytest.mark.integration  # the pose demo model, real footage, three sizes

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
FPS = 4.0
LAWN = (96, 312, 384, 216)  # x, y, w, h in vtest's 768×576
WIDTHS = (320, 640)  # and the full 1280
AGREE = 0.8


@pytest.fixture(scope="module")
def lawn() -> np.ndarray:
    if not VTEST.is_file():
        pytest.skip("opencv-doc (vtest.avi) is not installed")
    x, y, w, h = LAWN
    frames = read_frames(VTEST, FPS, start_s=50.0, end_s=74.0)
    return np.stack(
        [
            cv2.resize(f.rgb[y : y + h, x : x + w], (1280, 720), interpolation=cv2.INTER_CUBIC)
            for f in frames
        ]
    )


def scaled(frames: np.ndarray, width: int) -> np.ndarray:
    height = round(frames.shape[1] * width / frames.shape[2])
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])


def video(frames: np.ndarray, path: Path) -> bytes:
    """A motion-JPEG AVI (quality 95) at the model's fps: every frame is sampled."""
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (width, height))
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path.read_bytes()


def jpeg_message(seq: int, rgb: np.ndarray, quality: int = 80) -> str:
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    assert ok
    image = base64.b64encode(data.tobytes()).decode()
    return json.dumps({"type": "frame", "seq": seq, "ts": seq / FPS, "image": image})


def test_classify_and_streams_agree_at_320_640_and_full_size(
    demo_model: Path, lawn: np.ndarray, tmp_path: Path
) -> None:
    from gad.demo import package_dir

    package = package_dir(demo_model)
    classified: dict[int, tuple[list[int], str]] = {}
    streamed: dict[int, list[int]] = {}
    with client(package, threads=1) as http:
        background = http.app.state.served.package.background_index
        for width in (1280, *WIDTHS):
            frames = lawn if width == 1280 else scaled(lawn, width)
            response = http.post(
                "/v1/classify",
                content=video(frames, tmp_path / f"lawn-{width}.avi"),
                headers={"content-type": "video/x-msvideo"},
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["source"]["width"] == width and len(body["frames"]) == len(lawn)
            labels = [f["index"] for f in body["frames"]]
            classified[width] = (labels, body["clip"]["label"])  # service/classify.py clip_label
            with http.websocket_connect(f"/v1/streams/lawn-{width}") as ws:
                ws.receive_json()  # ready
                replies = []
                for seq, frame in enumerate(frames):
                    ws.send_text(jpeg_message(seq, frame))
                    replies.append(ws.receive_json())
            assert [r["type"] for r in replies] == ["label"] * len(frames), replies[:3]
            streamed[width] = [r["index"] for r in replies]
    full, full_clip = classified[1280]
    person_frames = np.array(full) != background
    assert person_frames.mean() > 0.5, "the demo calls most of these walking rows an action"
    for width in WIDTHS:
        labels, clip = classified[width]
        agree = np.mean(np.array(labels) == full)
        assert agree >= AGREE, f"/classify at {width} px: {agree:.0%} of frame labels agree"
        assert clip == full_clip, f"/classify at {width} px: clip label {clip} ≠ {full_clip}"
    for width in (1280, *WIDTHS):
        agree = np.mean(np.array(streamed[width]) == full)
        assert agree >= AGREE, f"a JPEG stream at {width} px: {agree:.0%} agree with /classify"
