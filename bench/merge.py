"""LoRA merged on both sides of a speed ratio, so a head is never timed merged against
decoding with its adapters unmerged (issue 17).

    merge_head          what head.onnx, clip.onnx and the torch backend run: the decoder's
                        adapters merged, the lm_head adapter dropped (the head never reads
                        lm_head), the question prefix embedded once
    merge_for_decoding  the generative classifier with every adapter merged, the lm_head
                        one included: generation is unchanged, only cheaper

Unmerged, eager PyTorch runs two extra matmuls (and a dropout) per adapted projection; on
a GPU at batch 1 those launches cost as much as the layers, so the merge state has to be
the same on both sides of a head-vs-decoding ratio.
"""

from __future__ import annotations

import warnings

from peft import PeftModel
from torch import nn

from model.export.graph import prepare_for_export
from model.gad import GADClassifier

_TIED_WARNINGS = (
    "Model (has|with) `tie_word_embeddings=True`",
    "Input and output embeddings are no longer tied",
)


def merge_head(model: GADClassifier) -> GADClassifier:
    """The served [CLS] path: LoRA merged for the head (in place; generation is lost)."""
    return prepare_for_export(model)


def merge_for_decoding(model: GADClassifier) -> GADClassifier:
    """Merge every LoRA adapter, lm_head's included, into `model` in place; decoding gives
    the same tokens (exact up to float reassociation).

    With tied embeddings (Llama-3.2-1B, SmolLM2) lm_head's weight is the input embedding
    matrix: it is untied first (its own copy, vocab × hidden more memory), so the lm_head
    adapter merges into lm_head alone and the token embeddings stay as trained."""
    lm = model.lm
    if not isinstance(lm, PeftModel):
        return model.eval()
    from peft.tuners.lora import LoraLayer

    base = lm.get_base_model()
    head = base.get_output_embeddings()
    if isinstance(head, LoraLayer):
        layer = head.get_base_layer()
        if layer.weight is base.get_input_embeddings().weight:
            layer.weight = nn.Parameter(layer.weight.detach().clone(), requires_grad=False)
    with warnings.catch_warnings():
        for message in _TIED_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        model.lm = lm.merge_and_unload()
    model.freeze_prefix()  # as merge_head does: the prefix embedded once
    return model.eval()
