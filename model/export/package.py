"""The model package: a checkpoint's one-pass [CLS] path as `head.onnx`, plus a manifest.

    OUT/NAME/VERSION/
        manifest.json     what the service needs to know and check: a Manifest
                          (runtime/manifest.py), written as its to_json()
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
    prepare_for_export,
)
from model.export.head import export_head, head_section, probe_windows, verify_head
from runtime.errors import CheckpointError
from runtime.manifest import (
    HEAD_FILE,
    MANIFEST_FILE,
    PREFILL_FILE,
    STEP_FILE,
    ClipSection,
    EncoderSection,
    FileDigest,
    HeadSection,
    Manifest,
    ModelPackage,
    PrefillSection,
    StepSection,
    Verify,
)

log = logging.getLogger(__name__)


@dataclass
class ExportResult:
    folder: Path
    manifest: Manifest  # as written to folder/manifest.json (manifest.to_json())

    @property
    def package(self) -> ModelPackage:
        return ModelPackage(self.folder, self.manifest)


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
        head: HeadSection | None = None
        step: StepSection | None = None
        verified: Verify | None = None
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
            head = head_section(info.config, export_head(model, tmp / HEAD_FILE))
            if verify:
                verified = verify_head(tmp / HEAD_FILE, probe, reference, tolerance=tolerance)
        encoder = None
        encoder_spec = (info.extra.get("data") or {}).get("encoder")
        if with_encoder and encoder_spec:
            encoder = _export_encoder(encoder_spec, tmp, verify=verify)
        run_metrics = _read_metrics(metrics, Path(checkpoint))
        clip_section = None
        if clip_only:
            clip = Path(checkpoint)
        if clip is not None:
            clip_section = export_clip(
                Path(clip),
                tmp,
                info,
                verify=verify,
                tolerance=tolerance,
                rows=clip_probe_rows,
                backbone=backbone,
                metrics=_read_metrics(None, Path(clip)),
            )
        manifest = build_manifest(
            info,
            name=name,
            version=str(version),
            head=head,
            step=step,
            clip=clip_section,
            encoder=encoder,
            verify=verified,
            metrics=run_metrics,
            files={
                path.name: FileDigest.of(path) for path in sorted(tmp.iterdir()) if path.is_file()
            },
        )
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest.to_json(), indent=2) + "\n")
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
) -> tuple[StepSection, Verify | None]:
    """step.onnx of a streaming checkpoint, checked frame by frame against PyTorch's
    banded pass (unmerged, the training forward) over a few streams from their start."""
    from model.export.step import (
        PrefillGraph,
        StepGraph,
        export_prefill,
        export_step,
        step_section,
        verify_step,
    )
    from model.streaming.runner import StreamingGAD

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
    chunk = PrefillGraph(model, window, frames=max(8, 2 * window))  # rings wrap in a chunk
    prefill_files = export_prefill(chunk, prefill)
    section = step_section(
        graph, files, path, PrefillSection(prefill.name, tuple(prefill_files), chunk.frames)
    )
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
    return section, verified


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


def _export_encoder(spec: dict[str, Any], folder: Path, *, verify: bool) -> EncoderSection:
    from model.export.encoder import export_package_encoder

    return export_package_encoder(spec, folder, verify=verify)


def build_manifest(
    info,
    *,
    name: str,
    version: str,
    head: HeadSection | None,
    step: StepSection | None,
    clip: ClipSection | None,
    encoder: EncoderSection | None,
    verify: Verify | None,
    metrics: dict[str, Any] | None,
    files: dict[str, FileDigest],
) -> Manifest:
    """The package's manifest: a windowed package has a `head` and its window, a streaming
    one a `step` (no head, no window), a clip-only one neither (and no background)."""
    cfg = info.config
    data = info.extra.get("data") or {}
    per_frame = head is not None or step is not None
    return Manifest(
        name=name,
        version=version,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        kind=cfg.kind,
        classes=tuple(cfg.class_names),
        background_index=cfg.background_index if per_frame else None,
        fps=float(data.get("fps", 4.0)),
        feature_dim=cfg.feature_dim,
        window=cfg.window if head is not None else None,
        head=head,
        encoder=encoder,
        backbone=info.backbone,
        parameters=info.parameters,
        training=info.extra.get("train"),
        metrics=metrics,
        verify=verify,
        step=step,
        attention="streaming" if step is not None else None,
        clip=clip,
        files=files,
    )
