"""BlazePose's weights, from a registry package to checked ONNX graphs in the cache.

    python -m model.export.pose [--wheel PATH] [--cache-dir DIR]     # scripts/setup.sh runs it

Where the weights come from: the `mediapipe==0.10.14` wheel on PyPI carries
`pose_detection.tflite` and `pose_landmark_full.tflite` (Apache-2.0). mediapipe itself pins
numpy < 2, so it is never installed: `pip download --no-deps` fetches the wheel (one fixed
platform and Python tag, so every machine gets the same bytes), the two files are read out
of it with zipfile and checked against the sha256 below.

How they are run: converted to ONNX once (model/export/tflite_onnx.py) and served by
onnxruntime, the engine the service already ships on CPU and GPU, with a free batch size
and no extra runtime in the serving image. The TF Lite reference runtime (`ai-edge-litert`)
is the judge: each converted graph must give the same outputs on the same inputs — camera-
like frames (reference_frames; the tests use photos of people), letterboxed for the
detector and as ROI crops for the landmark model — within
`RTOL` of each output's range (|onnx - tflite| / max |tflite|, outputs in input pixels and
logits of up to ≈ 700). A conversion that differs is refused and nothing is published.
Measured on photos and footage of people (tests/runtime/test_pose_convert.py): detector
8e-6 relative (3e-3 absolute on values up to 400), landmarks 2.3e-5 (5e-3 absolute, in
the depth output); on the synthetic frames below 1.1e-5 and 1.7e-5. TF Lite runs XNNPACK
kernels, onnxruntime its own: float32 sums in another order, nothing more.

Speed, one core, graph alone: the detector runs about as fast in either runtime (LiteRT
~10% ahead); the whole landmark graph is slower in onnxruntime (~1.2x), but the converted
one drops the segmentation and heatmap branches we do not read, which halves its cost and
puts it ~1.7x ahead of LiteRT's whole graph. We choose onnxruntime for being the one engine
(CPU and GPU images, providers, thread settings, sessions) and for the free batch size.

The result, CACHE/pose/blazepose-0.10.14/: both .tflite files, pose_detection.onnx,
pose_landmark.onnx and pose.json (the encoder description, sha256 of every file, the check).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from runtime.cache_files import building, cache_lock, default_cache_dir
from runtime.errors import CheckpointError
from runtime.manifest import sha256
from runtime.pose.detector import letterbox
from runtime.pose.encoder import (
    DETECTOR_FILE,
    LANDMARK_FILE,
    PoseFrameEncoder,
    pose_description,
)
from runtime.pose.roi import CROP_SIZE, crop, roi_from_keypoints
from runtime.sessions import open_session

log = logging.getLogger(__name__)

MEDIAPIPE = "mediapipe==0.10.14"
# The wheel fetched everywhere (the .tflite files are the same in every 0.10.x wheel).
WHEEL_PLATFORM = ("manylinux_2_17_x86_64", "3.11", "cp")
SOURCES = {  # name in the wheel → (cached name, sha256)
    "mediapipe/modules/pose_detection/pose_detection.tflite": (
        "pose_detection.tflite",
        "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
    ),
    "mediapipe/modules/pose_landmark/pose_landmark_full.tflite": (
        "pose_landmark_full.tflite",
        "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
    ),
}
# tflite → onnx, and the outputs kept (the landmark model's mask and heatmaps are dropped).
GRAPHS = {
    DETECTOR_FILE: ("pose_detection.tflite", None),
    LANDMARK_FILE: ("pose_landmark_full.tflite", ["Identity", "Identity_1"]),
}
RTOL = 1e-4
FOLDER = "blazepose-0.10.14"
INFO_FILE = "pose.json"


def pose_model_dir(cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / "pose" / FOLDER


def ensure_pose_models(
    cache_dir: Path | None = None, *, wheel: Path | None = None, verify: bool = True
) -> Path:
    """The folder of checked ONNX graphs, built once (see the module docstring)."""
    folder = pose_model_dir(cache_dir)
    if (folder / INFO_FILE).is_file():
        return folder
    with cache_lock(folder):  # one process builds, another (setup's pose demo) waits
        if not (folder / INFO_FILE).is_file():
            _build_pose_models(folder, wheel, verify)
    return folder


def _build_pose_models(folder: Path, wheel: Path | None, verify: bool) -> None:
    with building(folder) as tmp:
        extract_tflite(tmp, wheel=wheel)
        report: dict[str, Any] = {}
        from model.export.tflite_onnx import convert_tflite

        for onnx_name, (tflite_name, outputs) in GRAPHS.items():
            report[onnx_name] = convert_tflite(tmp / tflite_name, tmp / onnx_name, outputs=outputs)
        if verify:
            for onnx_name, diffs in verify_against_litert(tmp).items():
                report[onnx_name] |= diffs
        digests = {p.name: sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        info = pose_description() | {"sha256": digests, "source": MEDIAPIPE, "graphs": report}
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    log.info("pose models ready in %s", folder)


def load_pose_encoder(
    cache_dir: Path | None = None, *, threads: int | None = None
) -> PoseFrameEncoder:
    """The pose encoder on CPU, from the cached graphs (built first if need be)."""
    folder = ensure_pose_models(cache_dir)
    description = json.loads((folder / INFO_FILE).read_text())
    return PoseFrameEncoder.open(folder, description, providers=("cpu",), threads=threads)


def extract_tflite(target: Path, *, wheel: Path | None = None) -> None:
    """Write the two .tflite files into `target`, from `wheel` or a freshly downloaded one."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(wheel) if wheel is not None else download_wheel(Path(tmp))
        try:
            with zipfile.ZipFile(path) as archive:
                for member, (name, digest) in SOURCES.items():
                    (target / name).write_bytes(archive.read(member))
                    if sha256(target / name) != digest:
                        raise CheckpointError(
                            f"{member} in {path.name} does not match its sha256 {digest[:12]}…: "
                            f"expected the file of {MEDIAPIPE}"
                        )
        except (zipfile.BadZipFile, KeyError) as exc:
            raise CheckpointError(f"{path} is not the {MEDIAPIPE} wheel: {exc}") from exc


def download_wheel(folder: Path) -> Path:
    platform, python, implementation = WHEEL_PLATFORM
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "-q", "--platform", platform, "--python-version", python,
        "--implementation", implementation, "-d", str(folder), MEDIAPIPE,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(folder.glob("mediapipe-*.whl"))
    if done.returncode or not wheels:
        raise CheckpointError(
            f"could not download {MEDIAPIPE} with pip (exit {done.returncode}): "
            f"{done.stderr.strip()[-500:]}"
        )
    return wheels[0]


def reference_frames(count: int = 2, *, height: int = 360, width: int = 640) -> np.ndarray:
    """Deterministic camera-like uint8 RGB frames: a lit gradient, solid shapes, noise."""
    rng = np.random.default_rng(0)
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    sky = np.array([90, 140, 200], np.float32) * (1 - rows) + np.array([60, 90, 40]) * rows
    frames = np.empty((count, height, width, 3), np.uint8)
    for i in range(count):
        frame = np.ascontiguousarray(np.broadcast_to(sky, (height, width, 3)), dtype=np.uint8)
        for _ in range(8):
            x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
            size, color = int(rng.integers(15, 90)), [int(c) for c in rng.integers(0, 256, 3)]
            cv2.rectangle(frame, (x, y), (x + size, y + 2 * size), color, -1)
        frames[i] = np.clip(frame + rng.normal(0.0, 6.0, frame.shape), 0, 255)
    return frames


def reference_inputs() -> dict[str, np.ndarray]:
    """Inputs for both graphs: reference_frames letterboxed to 224 for the detector, and
    ROI crops of them for the landmark model. (The tests use real photos of people.)"""
    frames = reference_frames()
    detector = np.stack([letterbox(f, 224)[0] for f in frames]).astype(np.float32)
    rois = [roi_from_keypoints(np.array([320.0, 250.0]), np.array([300.0, 60.0]))] * len(frames)
    crops = np.stack([crop(f, r, CROP_SIZE) for f, r in zip(frames, rois, strict=True)])
    return {
        DETECTOR_FILE: detector * (2.0 / 255.0) - 1.0,
        LANDMARK_FILE: crops.astype(np.float32) / 255.0,
    }


def verify_against_litert(
    folder: Path, inputs: dict[str, np.ndarray] | None = None, *, rtol: float = RTOL
) -> dict[str, dict[str, float]]:
    """compare_with_litert over `inputs` (default reference_inputs); raises CheckpointError
    where a graph's relative difference exceeds `rtol`."""
    diffs = compare_with_litert(folder, inputs or reference_inputs())
    for name, diff in diffs.items():
        if diff["max_rel_diff"] > rtol:
            raise CheckpointError(
                f"{name}: onnxruntime differs from the TF Lite reference by "
                f"{diff['max_rel_diff']:.3g} of the output range (more than {rtol:g}, "
                f"{diff['max_abs_diff']:.3g} absolute); the conversion is refused"
            )
    return diffs


def compare_with_litert(folder: Path, inputs: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Run each graph on its inputs, one image at a time in LiteRT (batch 1 only) and as one
    batch in onnxruntime. Per graph: the largest |difference| over the kept outputs, and
    the largest |difference| / max(1, max |LiteRT output|) of one output and image."""
    from ai_edge_litert.interpreter import Interpreter

    diffs = {}
    for onnx_name, (tflite_name, _) in GRAPHS.items():
        batch = inputs[onnx_name]
        session: Any
        session, _, _ = open_session(folder / onnx_name, ("cpu",), 1)
        names = [o.name for o in session.get_outputs()]
        got = dict(
            zip(names, session.run(names, {session.get_inputs()[0].name: batch}), strict=True)
        )
        interpreter = Interpreter(str(folder / tflite_name), num_threads=1)
        interpreter.allocate_tensors()
        slot = interpreter.get_input_details()[0]["index"]
        outputs = {d["name"]: d["index"] for d in interpreter.get_output_details()}
        worst, relative = 0.0, 0.0
        for i, image in enumerate(batch):
            interpreter.set_tensor(slot, image[None])
            interpreter.invoke()
            for name in names:
                expected = interpreter.get_tensor(outputs[name])[0]
                diff = float(np.abs(got[name][i] - expected).max())
                worst = max(worst, diff)
                relative = max(relative, diff / max(1.0, float(np.abs(expected).max())))
        diffs[onnx_name] = {"max_abs_diff": worst, "max_rel_diff": relative}
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=Path, help=f"a local {MEDIAPIPE} wheel (else pip)")
    parser.add_argument("--cache-dir", type=Path, help="default: $GAD_CACHE_DIR")
    args = parser.parse_args(argv)
    try:
        folder = ensure_pose_models(args.cache_dir, wheel=args.wheel)
    except CheckpointError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    info = json.loads((folder / INFO_FILE).read_text())
    checks = {k: v.get("max_rel_diff") for k, v in info["graphs"].items()}
    sys.stdout.write(f"pose models in {folder} (|onnx - tflite| / range: {checks})\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
