"""The model package: a checkpoint's one-pass [CLS] path as `head.onnx`, plus a manifest.

    OUT/NAME/VERSION/
        manifest.json     what the service needs to know and check (runtime/manifest.py)
        head.onnx         features [batch, time, D] float32 + mask [batch, time] int64
                          → logits [batch, classes]; LoRA merged, no decoding
        head.onnx.data    the weights, when the graph is over 2 GB (Llama-3.2-1B)
        encoder.onnx      RGB pixels → feature vector, when the data came from
                          `gad data extract` (the checkpoint names its encoder)

The exported graph is `GADClassifier.class_logits` itself: LoRA merged into the decoder's
projections, the lm_head adapter dropped (the [CLS] path never reads lm_head, and merging
it would write into the embedding matrix tied to it), the question prefix embedded once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.checkpoint import load_checkpoint
from model.checkpoint_info import read_checkpoint_info
from model.export.clip import export_clip
from model.export.graph import (
    DEFAULT_TOLERANCE,
    GENERATIVE_REFUSED,
    OPSET,
    prepare_for_export,
)
from model.export.head import export_head, probe_windows, verify_head
from runtime.errors import CheckpointError
from runtime.manifest import (
    HEAD_FILE,
    MANIFEST_FILE,
    PREFILL_FILE,
    SCHEMA_VERSION,
    STEP_FILE,
    file_digest,
)

log = logging.getLogger(__name__)


@dataclass
class ExportResult:
    folder: Path
    manifest: dict[str, Any]


def export_package(
    checkpoint: Path,
    out: Path,
    *,
    name: str | None = None,
    version: str = "1",
    verify: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
    force: bool = False,
    backbone: str | None = None,
    probe_rows: np.ndarray | None = None,
    clip_probe_rows: np.ndarray | None = None,
    metrics: Path | None = None,
    with_encoder: bool = True,
    clip: Path | None = None,
) -> ExportResult:
    """Write `out/NAME/VERSION/` for `checkpoint`; see the module docstring. `clip`: a
    clip model's checkpoint to add as clip.onnx (model/export/clip.py). A clip checkpoint
    given as `checkpoint` makes a clip-only package: clip.onnx and no head (whole clips
    are answered; streams are refused)."""
    info = read_checkpoint_info(Path(checkpoint))
    clip_only = info.config.is_clip
    if clip_only and clip is not None:
        raise CheckpointError(
            f"{checkpoint} is itself a clip model: --clip adds a clip model beside a "
            "per-frame checkpoint"
        )
    if info.config.is_streaming and clip is not None:
        raise CheckpointError("a streaming package holds step.onnx alone: export --clip apart")
    if not info.config.uses_cls:
        raise CheckpointError(GENERATIVE_REFUSED)
    name = name or _default_name(Path(checkpoint))
    folder = Path(out) / name / str(version)
    if folder.exists() and not force:
        raise CheckpointError(f"{folder} already exists: pass --force to replace it")
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        head_files, verified, step = [], None, None
        if info.config.is_streaming:
            step, verified = _export_step(
                Path(checkpoint),
                tmp,
                backbone=backbone,
                rows=probe_rows,
                verify=verify,
                tolerance=tolerance,
            )
        elif not clip_only:
            model = load_checkpoint(Path(checkpoint), backbone=backbone)
            probe = probe_windows(model, rows=probe_rows)
            with torch.no_grad():
                reference = model.class_logits(*probe).float().numpy()
            prepare_for_export(model)
            head_files = export_head(model, tmp / HEAD_FILE)
            if verify:
                verified = verify_head(tmp / HEAD_FILE, probe, reference, tolerance=tolerance)
        encoder = None
        encoder_spec = (info.extra.get("data") or {}).get("encoder")
        if with_encoder and encoder_spec:
            encoder = _export_encoder(encoder_spec, tmp, verify=verify)
        manifest = build_manifest(
            info,
            name=name,
            version=str(version),
            head_files=head_files,
            encoder=encoder,
            metrics=_read_metrics(metrics, Path(checkpoint)),
        )
        manifest["verify"] = verified
        if step is not None:
            manifest |= {"head": None, "window": None, "step": step, "attention": "streaming"}
        if clip_only:
            manifest |= {"head": None, "window": None, "background_index": None}
            clip = Path(checkpoint)
        if clip is not None:
            manifest["clip"] = export_clip(
                Path(clip),
                tmp,
                info,
                verify=verify,
                tolerance=tolerance,
                rows=clip_probe_rows,
                backbone=backbone,
                metrics=_read_metrics(None, Path(clip)),
            )
        manifest["files"] = {
            path.name: file_digest(path) for path in sorted(tmp.iterdir()) if path.is_file()
        }
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return ExportResult(folder, manifest)


def _export_step(
    checkpoint: Path,
    folder: Path,
    *,
    backbone: str | None,
    rows: np.ndarray | None,
    verify: bool,
    tolerance: float,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """step.onnx of a streaming checkpoint, checked frame by frame against PyTorch's
    banded pass (unmerged, the training forward) over a few streams from their start."""
    from model.export.step import (
        PrefillGraph,
        StepGraph,
        export_prefill,
        export_step,
        step_manifest,
        verify_step,
    )
    from model.streaming import StreamingGAD

    model = load_checkpoint(checkpoint, backbone=backbone)
    window = model.config.stream_window
    features = step_probe(model.config.feature_dim, window, rows)
    with torch.no_grad():
        reference = StreamingGAD(model, window).frame_logits(torch.from_numpy(features))
    prepare_for_export(model, streaming=True)
    graph = StepGraph(model, window)
    path = folder / STEP_FILE
    files = export_step(graph, path)
    prefill = folder / PREFILL_FILE
    manifest = step_manifest(graph, files, path)
    chunk = PrefillGraph(model, window, frames=max(8, 2 * window))  # rings wrap in a chunk
    manifest["prefill"] = {
        "file": prefill.name,
        "files": export_prefill(chunk, prefill),
        "frames": chunk.frames,
    }
    verified = None
    if verify:
        verified = verify_step(
            path,
            features,
            reference.float().numpy(),
            graph.ring_shape(),
            tolerance=tolerance,
            prefill=prefill,
        )
    return manifest, verified


def step_probe(dim: int, window: int, rows: np.ndarray | None, *, seed: int = 0) -> np.ndarray:
    """Features [2, N, D] to check a step graph on: N = 2W + 3 frames, so both streams wrap
    their rings; real rows (one video's, from its start) when given, else random."""
    frames = 2 * window + 3
    if rows is not None and len(rows) >= frames + 1:
        rows = np.asarray(rows, dtype=np.float32)
        return np.stack([rows[:frames], rows[-frames:]])
    gen = np.random.default_rng(seed)
    return gen.standard_normal((2, frames, dim)).astype(np.float32)


def _default_name(checkpoint: Path) -> str:
    # runs/demo/checkpoint → "demo"
    folder = checkpoint.resolve()
    return folder.parent.name if folder.name == "checkpoint" else folder.name


def _read_metrics(path: Path | None, checkpoint: Path) -> dict[str, Any] | None:
    """`gad eval`'s metrics.json: the given file, else the run's eval/ report if any."""
    if path is None:
        run = checkpoint.resolve().parent
        path = run / "eval" / "metrics.json"
        if not path.is_file():
            return None
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read metrics {path}: {exc}") from exc


def _export_encoder(spec: dict[str, Any], folder: Path, *, verify: bool) -> dict[str, Any]:
    from model.export.encoder import export_package_encoder

    return export_package_encoder(spec, folder, verify=verify)


def build_manifest(
    info,
    *,
    name: str,
    version: str,
    head_files: list[str],
    encoder: dict[str, Any] | None,
    metrics: dict[str, Any] | None,
) -> dict[str, Any]:
    cfg = info.config
    data = info.extra.get("data") or {}
    return {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "version": version,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "kind": cfg.kind,
        "classes": list(cfg.class_names),
        "background_index": cfg.background_index,
        "fps": float(data.get("fps", 4.0)),
        "feature_dim": cfg.feature_dim,
        "window": {
            "long_frames": cfg.long_frames,
            "short_frames": cfg.short_frames,
            "long_stride": cfg.long_stride,
        },
        "head": {
            "file": HEAD_FILE,
            "files": head_files,
            "opset": OPSET,
            "inputs": {
                "features": {"shape": ["batch", "time", cfg.feature_dim], "dtype": "float32"},
                "mask": {"shape": ["batch", "time"], "dtype": "int64"},
            },
            "outputs": {"logits": {"shape": ["batch", cfg.num_classes], "dtype": "float32"}},
        },
        "encoder": encoder,
        "backbone": info.backbone,
        "parameters": info.parameters,
        "training": info.extra.get("train"),
        "metrics": metrics,
    }
