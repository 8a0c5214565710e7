import json
from pathlib import Path

import pytest
import torch

from model.backbone import (
    SMOLLM2,
    SOURCE_FILE,
    build_tiny_backbone,
    ensure_smollm2,
    resolve_backbone,
)
from runtime.errors import BackboneError


def test_tiny_is_a_small_llama_with_its_own_tokenizer() -> None:
    backbone = resolve_backbone("tiny")
    assert backbone.model.config.model_type == "llama"
    assert backbone.hidden_size == 64
    assert backbone.source is None
    tok = backbone.tokenizer
    ids = tok("Assistant: open drawer, close door", add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == "Assistant: open drawer, close door"
    assert tok.eos_token_id is not None and tok.bos_token_id is not None


def test_tiny_is_deterministic_per_seed() -> None:
    assert build_tiny_backbone(0).fingerprint == build_tiny_backbone(0).fingerprint
    assert build_tiny_backbone(0).fingerprint != build_tiny_backbone(1).fingerprint


def test_saved_local_folder_loads_as_the_same_model(tmp_path: Path) -> None:
    tiny = build_tiny_backbone()
    tiny.model.save_pretrained(tmp_path)
    tiny.tokenizer.save_pretrained(tmp_path)
    loaded = resolve_backbone(str(tmp_path))
    assert loaded.source == tmp_path
    assert loaded.spec == str(tmp_path)
    ids = torch.tensor([[0, 5, 6, 7]])
    with torch.no_grad():
        expected = tiny.model(ids).logits
        got = loaded.model(ids).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert len(loaded.fingerprint) == 64


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BackboneError, match="neither a known spec"):
        resolve_backbone(str(tmp_path / "Llama-3.2-1B-Instruct"))


def test_folder_without_config_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(BackboneError, match=r"has no config\.json"):
        resolve_backbone(str(tmp_path))


def test_non_causal_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vit"}))
    with pytest.raises(BackboneError, match="'vit' model, which is not a causal language model"):
        resolve_backbone(str(tmp_path))


@pytest.mark.slow
def test_smollm2_converts_once_and_loads(gad_cache_dir: Path) -> None:
    backbone = resolve_backbone(SMOLLM2, cache_dir=gad_cache_dir)
    cfg = backbone.model.config
    assert (cfg.model_type, cfg.hidden_size, cfg.num_hidden_layers) == ("llama", 576, 30)
    assert backbone.spec == SMOLLM2
    folder = ensure_smollm2(gad_cache_dir)
    assert (folder / "model.safetensors").is_file()
    source = json.loads((folder / SOURCE_FILE).read_text())
    assert backbone.fingerprint == source["sha256"]
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert ensure_smollm2(gad_cache_dir) == folder  # second call reuses the conversion
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    # A real pretrained LM: it knows the capital of France.
    tok = backbone.tokenizer
    ids = tok("The capital of France is", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        next_id = int(backbone.model(ids).logits[0, -1].argmax())
    assert tok.decode([next_id]).strip() == "Paris"


@pytest.mark.slow
def test_converting_smollm2_leaves_the_callers_random_state_alone(tmp_path: Path) -> None:
    # A seeded training run that converts (the first on a machine) must draw the same
    # initial heads as the same run on a warm cache.
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    ensure_smollm2(tmp_path)  # a cold cache: converts
    assert (tmp_path / "backbones" / SMOLLM2 / SOURCE_FILE).is_file()
    assert torch.equal(torch.random.get_rng_state(), before)


@pytest.mark.integration
def test_tiny_llama3_has_the_real_llama3_vocabulary(gad_cache_dir: Path) -> None:
    import quicktok

    backbone = resolve_backbone("tiny-llama3", cache_dir=gad_cache_dir)
    tok = backbone.tokenizer
    assert backbone.model.get_input_embeddings().weight.shape[0] == 128_256
    assert backbone.model.config.tie_word_embeddings
    assert tok.bos_token == "<|begin_of_text|>" and tok.bos_token_id == 128_000
    reference = quicktok.get_encoding("llama3")
    for text in ["open drawer, close door", "\nAssistant: BaseballPitch", "Ünïcødé 123 don't"]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert ids == reference.encode(text)
        assert tok.decode(ids) == text


def test_llama32_1b_random_has_the_published_size() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    from model.backbone import LLAMA32_1B_RANDOM, RANDOM_PRESETS

    shape = RANDOM_PRESETS[LLAMA32_1B_RANDOM].shape()
    with torch.device("meta"):  # count without allocating 5 GB
        model = LlamaForCausalLM(LlamaConfig(vocab_size=128_256, **shape))
    assert sum(p.numel() for p in model.parameters()) == 1_235_814_400
