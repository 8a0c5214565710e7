import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from model.backbone import build_tiny_backbone
from model.checkpoint import load_checkpoint, save_checkpoint
from model.checkpoint_info import META_FILE, TRAINED_FILE, read_checkpoint_info
from model.config import LoraSettings
from runtime.errors import CheckpointError
from tests.model.helpers import NAMES, random_batch, tiny_model, train_steps

pytestmark = pytest.mark.integration  # trains and round-trips tiny models: seconds each


@pytest.fixture
def saved(tmp_path: Path):
    model = tiny_model("gad")
    train_steps(model, steps=3)  # LoRA B is zero at init: train so the adapter matters
    path = tmp_path / "ckpt"
    save_checkpoint(model, path, extra={"steps": 3})
    return model, path


@pytest.mark.parametrize("kind", ["discriminative", "gad"])
def test_round_trip_gives_identical_logits(tmp_path: Path, kind: str) -> None:
    model = tiny_model(kind)
    train_steps(model, steps=3)
    save_checkpoint(model, tmp_path / "ckpt")
    loaded = load_checkpoint(tmp_path / "ckpt")
    features, _, _ = random_batch(batch=4, steps=6, seed=9)
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.class_logits(features), model.class_logits(features), rtol=0, atol=0
        )


def test_round_trip_generative_decodes_the_same(tmp_path: Path) -> None:
    model = tiny_model("generative")
    train_steps(model, steps=5)
    save_checkpoint(model, tmp_path / "ckpt")
    loaded = load_checkpoint(tmp_path / "ckpt")
    features, _, _ = random_batch(batch=3, steps=4, seed=2)
    assert (
        loaded.generate(features, constrained=False).texts
        == model.generate(features, constrained=False).texts
    )


def test_round_trip_without_lora(tmp_path: Path) -> None:
    model = tiny_model("discriminative", lora=LoraSettings(rank=0))
    train_steps(model, steps=2)
    save_checkpoint(model, tmp_path / "ckpt")
    assert not (tmp_path / "ckpt" / "adapter").exists()
    features, _, _ = random_batch()
    with torch.no_grad():
        torch.testing.assert_close(
            load_checkpoint(tmp_path / "ckpt").class_logits(features),
            model.class_logits(features),
            rtol=0,
            atol=0,
        )


def test_checkpoint_records_what_it_holds(saved) -> None:
    model, path = saved
    info = read_checkpoint_info(path)
    assert info.config == model.config
    assert info.backbone["spec"] == "tiny" and info.embedded_backbone
    assert info.backbone["fingerprint"] == build_tiny_backbone().fingerprint
    assert info.parameters["trainable"] < info.parameters["total"]
    assert info.extra == {"steps": 3}
    assert (path / "adapter" / "adapter_model.safetensors").is_file()
    adapter = load_file(str(path / "adapter" / "adapter_model.safetensors"))
    assert all("lora_" in k for k in adapter)  # no copy of the frozen lm_head


def test_resaving_a_loaded_checkpoint_keeps_it_loadable(saved, tmp_path: Path) -> None:
    _, path = saved
    again = tmp_path / "again"
    save_checkpoint(load_checkpoint(path), again)
    assert (
        read_checkpoint_info(again).backbone["fingerprint"]
        == read_checkpoint_info(path).backbone["fingerprint"]
    )
    load_checkpoint(again)


def test_other_backbone_is_refused(saved, tmp_path: Path) -> None:
    _, path = saved
    other = build_tiny_backbone(seed=1)
    other.model.save_pretrained(tmp_path / "other")
    other.tokenizer.save_pretrained(tmp_path / "other")
    with pytest.raises(CheckpointError, match="was trained on backbone 'tiny'"):
        load_checkpoint(path, backbone=str(tmp_path / "other"))


def test_other_feature_size_or_classes_are_refused(saved) -> None:
    _, path = saved
    with pytest.raises(CheckpointError, match="expects 16-d features, the data has 2048-d"):
        load_checkpoint(path, expect_feature_dim=2048)
    with pytest.raises(CheckpointError, match="trained on 6 classes"):
        load_checkpoint(path, expect_class_names=NAMES[:5])
    load_checkpoint(path, expect_feature_dim=16, expect_class_names=NAMES)


def test_edited_config_that_no_longer_fits_the_weights(saved) -> None:
    _, path = saved
    meta = json.loads((path / META_FILE).read_text())
    meta["model"]["feature_dim"] = 32
    (path / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"connector\.fc1\.weight has shape \[64, 16\]"):
        load_checkpoint(path)


def test_trained_file_of_another_kind(saved) -> None:
    _, path = saved
    weights = load_file(str(path / TRAINED_FILE))
    del weights["cls_embedding"]
    save_file(weights, str(path / TRAINED_FILE))
    with pytest.raises(CheckpointError, match="missing \\['cls_embedding'\\]"):
        load_checkpoint(path)


def test_missing_or_foreign_folders(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"has no checkpoint\.json"):
        load_checkpoint(tmp_path / "empty")
    (tmp_path / "future").mkdir()
    (tmp_path / "future" / META_FILE).write_text(json.dumps({"format_version": 99}))
    with pytest.raises(CheckpointError, match="format_version 99"):
        load_checkpoint(tmp_path / "future")


def test_tied_llama3_backbone_round_trip(tmp_path: Path, gad_cache_dir: Path) -> None:
    from model.backbone import resolve_backbone
    from model.gad import GADClassifier
    from tests.model.helpers import tiny_config

    torch.manual_seed(0)
    config = tiny_config("gad", backbone="tiny-llama3")
    model = GADClassifier(config, resolve_backbone("tiny-llama3", cache_dir=gad_cache_dir))
    train_steps(model, steps=2)
    save_checkpoint(model, tmp_path / "ckpt")
    loaded = load_checkpoint(tmp_path / "ckpt", cache_dir=gad_cache_dir)
    features, _, _ = random_batch(batch=2, steps=3)
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.class_logits(features), model.class_logits(features), rtol=0, atol=0
        )
    out = loaded.generate(features, constrained=True)
    assert all(out.exact)
