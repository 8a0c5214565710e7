"""Reading what a checkpoint holds without torch (for `gad info` and the exporter's manifest).

A checkpoint is a folder:

    checkpoint.json        format version, ModelConfig, backbone spec + fingerprint,
                           parameter counts, free-form `extra` (training summary, metrics)
    trained.safetensors    connector, [CLS] embedding, class head (fully trained parts)
    adapter/               the LoRA adapter as peft saves it (absent when rank = 0)
    backbone/              the backbone itself, only when it exists nowhere else
                           (`tiny`, built in memory); otherwise the spec is resolved again
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.config import ModelConfig
from runtime.errors import CheckpointError

FORMAT_VERSION = 1
META_FILE = "checkpoint.json"
TRAINED_FILE = "trained.safetensors"
ADAPTER_DIR = "adapter"
BACKBONE_DIR = "backbone"
CHECKPOINT_DIR = "checkpoint"  # a run folder's checkpoint


@dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    config: ModelConfig
    backbone: dict[str, Any]  # spec, fingerprint, model_type, hidden_size, num_layers, vocab_size
    embedded_backbone: bool
    parameters: dict[str, int]  # total, trainable
    extra: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "model": self.config.to_dict(),
            "backbone": self.backbone,
            "embedded_backbone": self.embedded_backbone,
            "parameters": self.parameters,
            "extra": self.extra,
        }


def read_checkpoint_info(path: Path) -> CheckpointInfo:
    path = Path(path)
    meta_path = path / META_FILE
    if not meta_path.is_file():
        what = "does not exist" if not path.exists() else f"has no {META_FILE}"
        raise CheckpointError(f"checkpoint {path} {what}: expected a folder saved by gad train")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{meta_path} is not valid JSON: {exc}") from exc
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{meta_path} has format_version {version!r}, this gad reads {FORMAT_VERSION}"
        )
    try:
        return CheckpointInfo(
            path=path,
            config=ModelConfig.from_dict(meta["model"]),
            backbone=dict(meta["backbone"]),
            embedded_backbone=bool(meta["embedded_backbone"]),
            parameters=dict(meta.get("parameters", {})),
            extra=dict(meta.get("extra", {})),
        )
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{meta_path} is missing or mangles field {exc}") from exc


def describe_checkpoint(info: CheckpointInfo) -> list[tuple[str, str]]:
    """Rows of (field, value) for a human reader."""
    cfg, bb = info.config, info.backbone
    kind_note = {
        "generative": "decodes the label text",
        "discriminative": "[CLS] head, CE loss only",
        "gad": f"[CLS] head at inference, CE + {cfg.lm_weight:g}·LM in training",
    }[cfg.kind]
    names = [f"{n}*" if i == cfg.background_index else n for i, n in enumerate(cfg.class_names)]
    lora = cfg.lora
    lora_text = "off (backbone frozen)"
    if lora.rank:
        targets = ",".join(lora.targets(cfg.kind))
        lora_text = f"r={lora.rank} α={lora.alpha} dropout={lora.dropout:g} on {targets}"
    total, trainable = info.parameters.get("total", 0), info.parameters.get("trainable", 0)
    share = f" ({100 * trainable / total:.2f}%)" if total else ""
    rows = [
        ("checkpoint", str(info.path)),
        ("kind", f"{cfg.kind} — {kind_note}"),
        (
            "backbone",
            f"{bb.get('spec')} ({bb.get('model_type')}, hidden {bb.get('hidden_size')}, "
            f"{bb.get('num_layers')} layers, vocab {bb.get('vocab_size')})"
            + (", embedded" if info.embedded_backbone else ""),
        ),
        ("fingerprint", str(bb.get("fingerprint"))),
    ]
    if cfg.is_clip:
        rows += [
            ("features", f"{cfg.feature_dim}-d; clips of at most {cfg.clip_frames} rows"),
            ("steps", f"{cfg.num_classes}: {', '.join(cfg.class_names)}"),
            ("tasks", f"{len(cfg.task_names)}: {', '.join(cfg.task_names)}"),
            ("questions", " | ".join(cfg.clip_questions)),
        ]
    else:
        rows += [
            (
                "features",
                f"{cfg.feature_dim}-d; window {cfg.long_frames} long + {cfg.short_frames} short",
            ),
            ("classes", f"{cfg.num_classes}: {', '.join(names)}  (* background)"),
        ]
    rows += [
        ("loss", f"background weight {cfg.background_weight:g}, λ {cfg.lm_weight:g}"),
        ("LoRA", lora_text),
        ("parameters", f"total {total:,}  trainable {trainable:,}{share}"),
        ("files", ", ".join(_file_sizes(info.path))),
    ]
    rows += [(f"extra.{key}", json.dumps(value)) for key, value in sorted(info.extra.items())]
    return rows


def _file_sizes(path: Path) -> list[str]:
    out = []
    for child in sorted(path.iterdir()):
        files = [child] if child.is_file() else [p for p in child.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        out.append(f"{child.name}{'/' if child.is_dir() else ''} {size / 1e6:.2f} MB")
    return out


def resolve_checkpoint(path: Path) -> Path:
    """A run folder (holding checkpoint/) or a checkpoint folder → the checkpoint folder.
    Its run's reports live beside it, in `.parent / "eval"`."""
    inner = Path(path) / CHECKPOINT_DIR
    return inner if inner.is_dir() else Path(path)
