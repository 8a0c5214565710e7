from pathlib import Path

import pytest
import torch
from peft import PeftModel

from bench.merge import merge_for_decoding, merge_head
from model.backbone import resolve_backbone
from model.gad import GADClassifier
from tests.model.helpers import random_batch, tiny_config


def _generative(spec: str, cache_dir: Path) -> GADClassifier:
    torch.manual_seed(0)
    config = tiny_config("generative", backbone=spec)
    model = GADClassifier(config, resolve_backbone(spec, cache_dir=cache_dir)).eval()
    with torch.no_grad():  # trained-looking adapters: B = 0 would make merging a no-op
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.5)
    return model


@pytest.mark.parametrize("spec", ["tiny", "tiny-llama3"])  # untied and tied embeddings
def test_merged_decoding_gives_the_same_tokens(spec: str, gad_cache_dir: Path) -> None:
    model = _generative(spec, gad_cache_dir)
    features, _, _ = random_batch(batch=4, steps=8)
    embeddings = model.lm.get_base_model().get_input_embeddings().weight.detach().clone()
    free = model.generate(features, constrained=False).texts  # every step reads lm_head
    constrained = model.generate(features, constrained=True).texts

    merge_for_decoding(model)

    assert not isinstance(model.lm, PeftModel)
    assert not any("lora_" in name for name, _ in model.lm.named_parameters())
    # With tied embeddings the lm_head adapter went into an untied copy of lm_head: the
    # token embeddings the decoder reads are still the trained ones.
    torch.testing.assert_close(model.lm.get_input_embeddings().weight, embeddings)
    assert model.lm.get_output_embeddings().weight is not model.lm.get_input_embeddings().weight
    assert model.generate(features, constrained=False).texts == free
    assert model.generate(features, constrained=True).texts == constrained


def test_merged_head_gives_the_same_logits() -> None:
    from tests.model.helpers import tiny_model

    model = tiny_model("gad").eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.5)
    features, _, _ = random_batch(batch=3, steps=8)
    with torch.no_grad():
        before = model.class_logits(features)
        after = merge_head(model).class_logits(features)
    assert not isinstance(model.lm, PeftModel)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
