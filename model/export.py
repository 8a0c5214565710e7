"""The model package: a checkpoint's one-pass [CLS] path as `head.onnx`, plus a manifest.

    OUT/NAME/VERSION/
        manifest.json     what the service needs to know and check (service/package.py)
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
from torch import nn

from model.checkpoint import load_checkpoint
from model.checkpoint_info import read_checkpoint_info
from model.encoder_export import quiet_exporter
from model.errors import CheckpointError
from model.gad import GADClassifier
from model.lora import merge_for_head
from model.manifest import (
    ENCODER_FILE,
    HEAD_FILE,
    MANIFEST_FILE,
    SCHEMA_VERSION,
    file_digest,
)

log = logging.getLogger(__name__)

OPSET = 18
# fp32 graphs of these models agree with PyTorch to ~1e-5; 1e-3 leaves room for the
# reassociated sums of merged LoRA weights without hiding a wrong graph (logits ~1-10).
DEFAULT_TOLERANCE = 1e-3
SINGLE_FILE_LIMIT = 1_800_000_000  # protobuf's 2 GB cap, with margin
GENERATIVE_REFUSED = (
    "a generative checkpoint has no [CLS] head to export: it classifies by decoding; "
    "export a discriminative or gad checkpoint"
)


class HeadGraph(nn.Module):
    """What head.onnx computes: logits for a batch of windows, one forward pass."""

    def __init__(self, model: GADClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model.class_logits(features, mask)


def prepare_for_export(model: GADClassifier) -> GADClassifier:
    """Merge LoRA into the backbone for the [CLS] path (in place; generation is lost)."""
    if model.head is None:
        raise CheckpointError(GENERATIVE_REFUSED)
    model.lm = merge_for_head(model.lm)
    model.freeze_prefix()
    return model.eval()


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
    data: Path | None = None,
    metrics: Path | None = None,
    with_encoder: bool = True,
    clip: Path | None = None,
) -> ExportResult:
    """Write `out/NAME/VERSION/` for `checkpoint`; see the module docstring. `clip`: a
    clip model's checkpoint to add as clip.onnx (model/clip_export.py). A clip checkpoint
    given as `checkpoint` makes a clip-only package: clip.onnx and no head (whole clips
    are answered; streams are refused)."""
    info = read_checkpoint_info(Path(checkpoint))
    clip_only = info.config.is_clip
    if clip_only and clip is not None:
        raise CheckpointError(
            f"{checkpoint} is itself a clip model: --clip adds a clip model beside a "
            "per-frame checkpoint"
        )
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
        head_files, verified = [], None
        if not clip_only:
            model = load_checkpoint(Path(checkpoint), backbone=backbone)
            probe = probe_windows(model, data=data)
            with torch.no_grad():
                reference = model.class_logits(*probe).float().numpy()
            prepare_for_export(model)
            head_files = export_head(model, tmp / HEAD_FILE)
            if verify:
                verified = verify_head(tmp / HEAD_FILE, probe, reference, tolerance=tolerance)
        encoder = None
        encoder_spec = (info.extra.get("data") or {}).get("encoder")
        if with_encoder and encoder_spec:
            encoder = _export_encoder(encoder_spec, tmp / ENCODER_FILE, verify=verify)
        manifest = build_manifest(
            info,
            name=name,
            version=str(version),
            head_files=head_files,
            encoder=encoder,
            metrics=_read_metrics(metrics, Path(checkpoint)),
        )
        manifest["verify"] = verified
        if clip_only:
            manifest |= {"head": None, "window": None, "background_index": None}
            clip = Path(checkpoint)
        if clip is not None:
            from model.clip_export import export_clip

            manifest["clip"] = export_clip(
                Path(clip),
                tmp,
                info,
                verify=verify,
                tolerance=tolerance,
                data=data,
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


def _default_name(checkpoint: Path) -> str:
    # runs/demo/checkpoint → "demo"
    folder = checkpoint.resolve()
    return folder.parent.name if folder.name == "checkpoint" else folder.name


def probe_windows(
    model: GADClassifier, *, data: Path | None = None, batch: int = 3, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows to compare ONNX with PyTorch on: real test windows when `data` is given
    (the start of a video, so left padding is exercised), else random features; the
    first window is always partly padded."""
    spec = model.config.window
    if data is not None:
        from model.windowing import build_windows
        from training.data_info import load_data_info
        from training.dataset import load_video

        info = load_data_info(Path(data))
        video = load_video(info, info.test_sessions[0])
        rows = np.asarray(video.features, dtype=np.float32)
        frames = np.linspace(0, len(rows) - 1, batch).astype(int)
        frames[0] = min(2, len(rows) - 1)
        features, mask = build_windows(rows, frames, spec)
        return torch.from_numpy(features), torch.from_numpy(mask).long()
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(batch, spec.size, model.config.feature_dim, generator=gen)
    mask = torch.ones(batch, spec.size, dtype=torch.long)
    mask[0, : spec.size // 2] = 0
    features[0, : spec.size // 2] = 0
    return features, mask


def export_head(model: GADClassifier, path: Path) -> list[str]:
    """Write head.onnx (dynamic batch and time); returns the file names written."""
    cfg = model.config
    return export_graph(
        HeadGraph(model), path, ["logits"], steps=cfg.window.size, feature_dim=cfg.feature_dim
    )


def export_graph(
    graph: nn.Module, path: Path, outputs: list[str], *, steps: int, feature_dim: int
) -> list[str]:
    """Export `graph(features [B, T, D], mask [B, T])` with dynamic batch and time; the
    weights go to an external data file when the graph is over protobuf's limit."""
    example = (torch.zeros(2, steps, feature_dim), torch.ones(2, steps, dtype=torch.long))
    batch, time = torch.export.Dim("batch"), torch.export.Dim("time", min=2)
    size = sum(p.numel() * p.element_size() for p in graph.parameters())
    with quiet_exporter():
        program = torch.onnx.export(
            graph.eval(),
            example,
            dynamo=True,
            opset_version=OPSET,
            input_names=["features", "mask"],
            output_names=outputs,
            dynamic_shapes={"features": {0: batch, 1: time}, "mask": {0: batch, 1: time}},
            verbose=False,
        )
        program.save(str(path), external_data=size > SINGLE_FILE_LIMIT)
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name))


def verify_head(
    path: Path,
    probe: tuple[torch.Tensor, torch.Tensor],
    reference: np.ndarray,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
) -> dict[str, Any]:
    """Compare head.onnx in onnxruntime with PyTorch logits; raise above `tolerance`."""
    return verify_graph(path, probe, {"logits": reference}, tolerance=tolerance)


def verify_graph(
    path: Path,
    probe: tuple[torch.Tensor, torch.Tensor],
    references: dict[str, np.ndarray],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
) -> dict[str, Any]:
    """Run the graph in onnxruntime on `probe`, batched and one window alone, and compare
    each output with PyTorch's; raise above `tolerance`."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    features, mask = (t.numpy() for t in probe)
    names = list(references)
    got = session.run(names, {"features": features, "mask": mask.astype(np.int64)})
    # Batch independence: each window alone must give its row of the batched result.
    single = session.run(names, {"features": features[:1], "mask": mask[:1]})
    diff, agree = 0.0, []
    for name, batched, alone in zip(names, got, single, strict=True):
        reference = references[name]
        diff = max(
            diff,
            float(np.abs(batched - reference).max()),
            float(np.abs(alone - reference[:1]).max()),
        )
        agree.append(float((batched.argmax(-1) == reference.argmax(-1)).mean()))
    result = {
        "max_abs_diff": diff,
        "tolerance": tolerance,
        "windows": len(features),
        "argmax_agreement": min(agree),
        "provider": "CPUExecutionProvider",
    }
    if not diff <= tolerance:
        raise CheckpointError(
            f"{path.name} differs from PyTorch by {diff:.3g} (tolerance {tolerance:g}) on "
            f"{len(features)} windows: the export is wrong, not published"
        )
    return result


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


def _export_encoder(spec: dict[str, Any], path: Path, *, verify: bool) -> dict[str, Any]:
    from model.encoder_export import export_encoder
    from model.encoders import load_encoder

    encoder = load_encoder(spec["spec"])
    if encoder.feature_dim != spec.get("feature_dim", encoder.feature_dim):
        raise CheckpointError(
            f"the data was extracted with {spec['spec']} at {spec['feature_dim']}-d but it "
            f"now gives {encoder.feature_dim}-d"
        )
    report = export_encoder(encoder, path, verify=verify)
    return encoder.describe() | {"file": path.name, "verify": report}


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
