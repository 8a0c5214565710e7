"""Save and load a GAD classifier as a checkpoint folder (layout in model/checkpoint_info.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel, set_peft_model_state_dict
from safetensors.torch import load_file, save_file

from model.backbone import RANDOM_PRESETS, SOURCE_FILE, resolve_backbone
from model.checkpoint_info import (
    ADAPTER_DIR,
    BACKBONE_DIR,
    META_FILE,
    TRAINED_FILE,
    CheckpointInfo,
    read_checkpoint_info,
)
from model.clip import new_classifier
from model.gad import GADClassifier, count_parameters
from model.lora import base_model, frozen_weights
from runtime.errors import CheckpointError


def trained_state(model: GADClassifier) -> dict[str, torch.Tensor]:
    """The fully trained parts: connector, [CLS] embedding, class head."""
    return {
        name: tensor.detach().contiguous()
        for name, tensor in model.state_dict().items()
        if not name.startswith("lm.")
    }


def save_checkpoint(
    model: GADClassifier, path: Path, *, extra: dict[str, Any] | None = None
) -> CheckpointInfo:
    """Write `model` to `path` (replacing an older checkpoint there atomically)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(trained_state(model), str(tmp / TRAINED_FILE))
    if isinstance(model.lm, PeftModel):
        # The frozen lm_head comes from the backbone (checked by fingerprint); saving it
        # again would add vocab×hidden weights (≈1 GB for Llama-3) to every checkpoint.
        model.lm.save_pretrained(str(tmp / ADAPTER_DIR), save_embedding_layers=False)
    # A backbone that exists nowhere else (random `tiny`, built in memory) travels along.
    embedded = model.backbone.source is None or model.config.backbone in RANDOM_PRESETS
    if embedded:
        _save_backbone(model, tmp / BACKBONE_DIR)
    total, trainable = count_parameters(model)
    info = CheckpointInfo(
        path=path,
        config=model.config,
        backbone=model.backbone.describe() | {"fingerprint": model.backbone.fingerprint},
        embedded_backbone=embedded,
        parameters={"total": total, "trainable": trainable},
        extra=dict(extra or {}),
    )
    (tmp / META_FILE).write_text(json.dumps(info.to_dict(), indent=2) + "\n")
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    return info


def _save_backbone(model: GADClassifier, folder: Path) -> None:
    """The frozen backbone weights (adapters left out) as a loadable HF folder."""
    folder.mkdir()
    lm = base_model(model.lm)
    lm.config.save_pretrained(str(folder))
    weights = frozen_weights(model.lm)
    if lm.config.tie_word_embeddings:  # one tensor under two names: store it once
        weights.pop("lm_head.weight", None)
    save_file(
        {k: v.contiguous() for k, v in weights.items()},
        str(folder / "model.safetensors"),
        metadata={"format": "pt"},
    )
    model.tokenizer.save_pretrained(str(folder))
    source = {"spec": model.config.backbone, "sha256": model.backbone.fingerprint}
    (folder / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n")


def load_checkpoint(
    path: Path,
    *,
    backbone: str | None = None,
    expect_feature_dim: int | None = None,
    expect_class_names: list[str] | tuple[str, ...] | None = None,
    dtype: torch.dtype = torch.float32,
    cache_dir: Path | None = None,
) -> GADClassifier:
    """Rebuild the classifier a checkpoint holds, refusing anything that does not match.

    `backbone` overrides where the backbone comes from (e.g. a local copy of
    Llama-3.2-1B); it must be the very backbone the checkpoint was trained on.
    """
    info = read_checkpoint_info(Path(path))
    cfg = info.config
    if expect_feature_dim is not None and expect_feature_dim != cfg.feature_dim:
        raise CheckpointError(
            f"checkpoint {path} expects {cfg.feature_dim}-d features, the data has "
            f"{expect_feature_dim}-d"
        )
    if expect_class_names is not None and tuple(expect_class_names) != cfg.class_names:
        raise CheckpointError(
            f"checkpoint {path} was trained on {cfg.num_classes} classes "
            f"{list(cfg.class_names)}, the data has {len(expect_class_names)} "
            f"{list(expect_class_names)}"
        )
    spec = backbone or (str(Path(path) / BACKBONE_DIR) if info.embedded_backbone else cfg.backbone)
    resolved = resolve_backbone(spec, cache_dir=cache_dir, dtype=dtype)
    expected = info.backbone.get("fingerprint")
    if resolved.fingerprint != expected:
        raise CheckpointError(
            f"checkpoint {path} was trained on backbone {info.backbone.get('spec')!r} "
            f"(fingerprint {str(expected)[:12]}, hidden {info.backbone.get('hidden_size')}) but "
            f"{spec!r} resolves to fingerprint {resolved.fingerprint[:12]}, hidden "
            f"{resolved.hidden_size}: load it with the backbone it was trained on"
        )
    resolved.spec = str(info.backbone.get("spec", cfg.backbone))
    model = new_classifier(cfg, resolved)
    _load_trained(model, Path(path) / TRAINED_FILE)
    _load_adapter(model, Path(path) / ADAPTER_DIR)
    return model.eval()


def _load_trained(model: GADClassifier, file: Path) -> None:
    if not file.is_file():
        raise CheckpointError(f"{file} is missing")
    saved = load_file(str(file))
    expected = trained_state(model)
    missing, unexpected = set(expected) - set(saved), set(saved) - set(expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{file} does not match a {model.config.kind} model: missing {sorted(missing)}, "
            f"unexpected {sorted(unexpected)}"
        )
    for name, tensor in saved.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(
                f"{file}: {name} has shape {list(tensor.shape)}, the config "
                f"(features {model.config.feature_dim}, {model.config.num_classes} classes, "
                f"hidden {model.backbone.hidden_size}) needs {list(expected[name].shape)}"
            )
    model.load_state_dict(saved, strict=False)


def _load_adapter(model: GADClassifier, folder: Path) -> None:
    if not isinstance(model.lm, PeftModel):
        return
    file = folder / "adapter_model.safetensors"
    if not file.is_file():
        raise CheckpointError(
            f"the config has LoRA rank {model.config.lora.rank} but {file} is missing"
        )
    result = set_peft_model_state_dict(model.lm, load_file(str(file)))
    missing_lora = [k for k in result.missing_keys if "lora_" in k]
    if result.unexpected_keys or missing_lora:
        raise CheckpointError(
            f"{file} does not fit the backbone: unexpected {result.unexpected_keys[:4]}, "
            f"missing {missing_lora[:4]}"
        )
