"""Export a frame encoder to ONNX and check that onnxruntime computes what PyTorch does.

The file takes `pixels` float32 `[batch, 3, S, S]` (the output of the encoder's
`Preprocess.apply`, dynamic batch) and gives `features` float32 `[batch, D]`.

Body-pose encoders (`blazepose`) are not exported from PyTorch: their two graphs are
converted from TF Lite once and cached (model/export/pose.py); `load_onnx_encoder` and
`export_package_encoder` hand them out like the image encoders' `encoder.onnx`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from model.encoders import FrameEncoder, is_pose_spec, load_encoder
from runtime.cache_files import building, cache_lock, default_cache_dir
from runtime.encoders import FrameEncoderKind, OnnxFrameEncoder
from runtime.errors import CheckpointError
from runtime.manifest import ENCODER_FILE, POSE_KIND, EncoderSection, encoder_kind, sha256

log = logging.getLogger(__name__)

ONNX_OPSET = 18
INPUT_NAME = "pixels"
OUTPUT_NAME = "features"


def export_encoder(
    encoder: FrameEncoder,
    path: Path,
    *,
    verify: bool = True,
    atol: float = 1e-3,
    frames: np.ndarray | None = None,
    batch_sizes: Sequence[int] = (1, 3),
) -> dict[str, Any]:
    """Write `encoder.module` to `path` as ONNX; with `verify`, compare onnxruntime with
    PyTorch on `frames` (uint8 RGB `[N, H, W, 3]`, default `sample_frames()`) preprocessed
    by the encoder, at each of `batch_sizes` from the one file. Raises CheckpointError when
    the largest absolute difference exceeds `atol`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name and moved into place only once it has passed its
    # check: a file that fails is never left where a good one is expected.
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        _export(encoder, tmp)
        report: dict[str, Any] = {
            "max_abs_diff": None,
            "batch_sizes": [],
            "opset": ONNX_OPSET,
            "bytes": tmp.stat().st_size,
        }
        if verify:
            diff = verify_encoder_onnx(encoder, tmp, frames=frames, batch_sizes=batch_sizes)
            if diff > atol:
                raise CheckpointError(
                    f"{path}: onnxruntime differs from PyTorch by up to {diff:.3g}, "
                    f"more than atol {atol:g} (batch sizes {list(batch_sizes)})"
                )
            report.update(max_abs_diff=diff, batch_sizes=list(batch_sizes))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return report


def _export(encoder: FrameEncoder, path: Path) -> None:
    module = encoder.module.eval()
    size = encoder.preprocess.size
    # Batch 2, not 1: torch.export specialises dimensions of size 0 and 1.
    example = torch.zeros(2, 3, size, size, device=encoder.device)
    with quiet_exporter():
        # The dynamo exporter handles all three encoders (EfficientNet's static "SAME"
        # padding, ResNet-50, DINOv2's position-embedding interpolation), so there is no
        # fallback to the deprecated TorchScript exporter.
        try:
            torch.onnx.export(
                module,
                (example,),
                str(path),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                opset_version=ONNX_OPSET,
                external_data=False,  # one self-contained file: the manifest hashes it
                verbose=False,
            )
        except Exception as exc:  # torch.export and the ONNX translation raise many kinds
            raise CheckpointError(
                f"ONNX export of encoder {encoder.spec!r} failed: {type(exc).__name__}: {exc}"
            ) from exc


@contextmanager
def quiet_exporter() -> Iterator[None]:
    """torch.onnx's dynamo exporter, quietly: it prints progress lines, logs every graph
    pass at INFO, warns that torchvision's ops cannot be registered (we use none), and
    torch's pytree raises a deprecation warning while it copies the graph (torch 2.13).
    Only errors remain; other warnings still surface (and fail the tests)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.filterwarnings(
            "ignore",
            message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
            category=FutureWarning,
        )
        # Two inputs sharing a dynamic axis (batch, time) collapse its name: expected.
        warnings.filterwarnings("ignore", message=".*will not be used, since it shares")
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def verify_encoder_onnx(
    encoder: FrameEncoder,
    path: Path,
    *,
    frames: np.ndarray | None = None,
    batch_sizes: Sequence[int] = (1, 3),
) -> float:
    """Largest |onnxruntime - PyTorch| over the features of `frames` at each batch size."""
    if frames is None:
        frames = sample_frames(max(batch_sizes))
    if frames.ndim == 3:
        frames = frames[None]
    session = onnx_session(path)
    worst = 0.0
    for batch in batch_sizes:
        chunk = np.resize(frames, (batch, *frames.shape[1:]))  # repeats frames if too few
        pixels = encoder.preprocess.apply(chunk)
        with torch.inference_mode():
            expected = encoder.module(torch.from_numpy(pixels).to(encoder.device))
        expected = expected.float().cpu().numpy()
        (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: pixels})
        if got.shape != expected.shape:
            raise CheckpointError(
                f"{path}: onnxruntime gave {got.shape} at batch {batch}, expected {expected.shape}"
            )
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def onnx_session(path: Path, *, threads: int | None = None) -> Any:
    """A CPU onnxruntime session; `threads` caps its intra-op thread pool."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def sample_frames(count: int, *, height: int = 480, width: int = 640, seed: int = 0) -> np.ndarray:
    """Deterministic camera-like uint8 RGB frames `[count, height, width, 3]`: a lit
    gradient, a few solid shapes that move from frame to frame, and sensor noise."""
    rng = np.random.default_rng(seed)
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    sky = np.array([90, 140, 200], np.float32) * (1 - rows) + np.array([60, 90, 40]) * rows
    base = np.broadcast_to(sky, (height, width, 3)).astype(np.uint8)
    shapes = [
        (
            rng.integers(0, width),
            rng.integers(0, height),
            rng.integers(20, 90),
            rng.integers(0, 256, 3),
        )
        for _ in range(6)
    ]
    frames = np.empty((count, height, width, 3), np.uint8)
    for i in range(count):
        frame = base.copy()
        for k, (x, y, r, color) in enumerate(shapes):
            cx, cy = int(x + 7 * i * (k + 1)) % width, int(y + 3 * i) % height
            paint = tuple(int(c) for c in color)
            if k % 2:
                cv2.circle(frame, (cx, cy), int(r), paint, thickness=-1)
            else:
                cv2.rectangle(frame, (cx, cy), (cx + int(r), cy + int(r) // 2), paint, -1)
        noise = rng.normal(0.0, 6.0, frame.shape)
        frames[i] = np.clip(frame + noise, 0, 255).astype(np.uint8)
    return frames


def load_onnx_encoder(
    spec: str, *, cache_dir: Path | None = None, threads: int | None = None
) -> FrameEncoderKind:
    """The encoder `spec` names, exported to ONNX once (verified against PyTorch) and
    cached under CACHE/encoders/, keyed by its description and a digest of its weights.
    A pose spec gives the pose encoder from CACHE/pose/ (model/export/pose.py)."""
    if is_pose_spec(spec):
        from model.export.pose import load_pose_encoder

        return load_pose_encoder(cache_dir, threads=threads)
    source = load_encoder(spec)
    description = source.describe()
    digest = hashlib.sha256(json.dumps(description, sort_keys=True).encode())
    for key, tensor in sorted(source.module.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    folder = (
        (cache_dir or default_cache_dir()) / "encoders" / f"{source.name}-{digest.hexdigest()[:16]}"
    )
    path = folder / "encoder.onnx"
    with cache_lock(folder):
        if not path.is_file():
            with building(folder) as tmp:
                report = export_encoder(source, tmp / "encoder.onnx")
                export = description | {"verify": report}
                (tmp / "export.json").write_text(json.dumps(export, indent=2))
            log.info("exported %s to %s", spec, path)
    return OnnxFrameEncoder.open(path, description, providers=("cpu",), threads=threads)


def export_package_encoder(
    description: dict[str, Any], folder: Path, *, verify: bool = True
) -> EncoderSection:
    """Write the frame encoder a dataset was extracted with (its `describe()`, as the
    checkpoint records it) into the package `folder`; returns the manifest's encoder
    section. An image encoder becomes encoder.onnx (exported from PyTorch, checked); a
    pose encoder's two cached graphs are copied (checked against their sha256)."""
    spec = str(description["spec"])
    if encoder_kind(description) == POSE_KIND:
        from model.export.pose import INFO_FILE, ensure_pose_models
        from runtime.pose.encoder import DETECTOR_FILE, LANDMARK_FILE

        source = ensure_pose_models(verify=verify)
        info = json.loads((source / INFO_FILE).read_text())
        for name in (DETECTOR_FILE, LANDMARK_FILE):
            shutil.copyfile(source / name, Path(folder) / name)
            if sha256(Path(folder) / name) != info["sha256"].get(name):
                raise CheckpointError(
                    f"{source / name} does not match its sha256 in {INFO_FILE}: delete "
                    f"{source} and run `python -m model.export.pose` again"
                )
        keep = {k: info[k] for k in ("kind", "spec", "name", "feature_dim", "preprocess")}
        _check_feature_dim(description, int(info["feature_dim"]))
        return EncoderSection.describing(
            keep | {"detector": DETECTOR_FILE, "landmarks": LANDMARK_FILE},
            file=LANDMARK_FILE,
            files=[DETECTOR_FILE],
            source=info.get("source"),
            verify=info.get("graphs"),
        )
    encoder = load_encoder(spec)
    _check_feature_dim(description, encoder.feature_dim)
    report = export_encoder(encoder, Path(folder) / ENCODER_FILE, verify=verify)
    return EncoderSection.describing(encoder.describe(), file=ENCODER_FILE, verify=report)


def _check_feature_dim(description: dict[str, Any], feature_dim: int) -> None:
    if feature_dim != description.get("feature_dim", feature_dim):
        raise CheckpointError(
            f"the data was extracted with {description['spec']} at "
            f"{description['feature_dim']}-d but it now gives {feature_dim}-d"
        )
