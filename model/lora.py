"""LoRA on the backbone through peft, with the paper's defaults (r=128, α=256, p=0.05)."""

from __future__ import annotations

import warnings

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import PreTrainedModel

from model.config import LoraSettings
from runtime.errors import ConfigError


def apply_lora(
    model: PreTrainedModel, settings: LoraSettings, *, kind: str
) -> PreTrainedModel | PeftModel:
    """Freeze the backbone and wrap it with LoRA adapters (rank 0: frozen, no adapter)."""
    for param in model.parameters():
        param.requires_grad_(False)
    if settings.rank == 0:
        return model
    targets = list(settings.targets(kind))
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in targets if t not in present]
    if missing:
        raise ConfigError(
            f"LoRA target modules {missing} do not exist in {type(model).__name__}; "
            f"its linear layers include {sorted(_linear_names(model))}"
        )
    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=targets,
        bias="none",
    )
    with warnings.catch_warnings():
        # peft probes a transformers attribute that transformers deprecates; harmless.
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing", category=FutureWarning
        )
        # Tied embeddings (Llama-3.2-1B, SmolLM2): like the paper, lm_head gets its own
        # adapter and the input embeddings stay frozen. Only the LM loss reads lm_head;
        # the served [CLS] path never does, so nothing merges into the tied weight.
        warnings.filterwarnings("ignore", message="Model (has|with) `tie_word_embeddings=True`")
        return get_peft_model(model, config)


def merge_for_head(lm: PreTrainedModel | PeftModel) -> PreTrainedModel:
    """LoRA merged into the decoder for the [CLS] path; the lm_head adapter is dropped, not
    merged: the head never reads lm_head, and with tied embeddings merging would write the
    adapter into the input embedding matrix. Generation is lost; classification is exact."""
    if not isinstance(lm, PeftModel):
        return lm
    from peft.tuners.lora import LoraLayer

    base = lm.get_base_model()
    lm_head = base.get_output_embeddings()
    if isinstance(lm_head, LoraLayer):
        base.set_output_embeddings(lm_head.get_base_layer())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Model (has|with) `tie_word_embeddings=True`")
        return lm.merge_and_unload()


def _linear_names(model: torch.nn.Module) -> set[str]:
    return {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
    }


def base_model(lm: PreTrainedModel | PeftModel) -> PreTrainedModel:
    """The transformers model inside a peft wrapper (LoRA layers stay injected)."""
    return lm.get_base_model() if isinstance(lm, PeftModel) else lm


def frozen_weights(lm: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The backbone weights under their original names, any LoRA adapters left out."""
    model = base_model(lm) if isinstance(lm, PeftModel) else lm
    weights = {}
    for name, tensor in model.state_dict().items():
        if "lora_" in name:
            continue
        weights[name.replace(".base_layer.", ".")] = tensor
    return weights
