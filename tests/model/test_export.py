import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model.checkpoint import load_checkpoint, save_checkpoint
from model.export.graph import prepare_for_export
from model.export.package import export_package
from runtime.engine import OnnxEngine
from runtime.errors import CheckpointError
from runtime.manifest import HEAD_FILE, MANIFEST_FILE, read_package
from tests.model.helpers import FEATURE_DIM, NAMES, tiny_model, train_steps


def test_manifest_describes_the_model(tiny_package: tuple[Path, Path]) -> None:
    _, folder = tiny_package
    assert folder.parent.name == "run" and folder.name == "1"  # OUT/NAME/VERSION
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert manifest["classes"] == list(NAMES)
    assert manifest["background_index"] == 0 and manifest["fps"] == 4.0
    assert manifest["feature_dim"] == FEATURE_DIM
    assert manifest["window"] == {"long_frames": 4, "short_frames": 4, "long_stride": 1}
    assert manifest["head"]["outputs"]["logits"]["shape"] == ["batch", len(NAMES)]
    assert manifest["verify"]["max_abs_diff"] < 1e-4
    assert manifest["encoder"] is None
    assert set(manifest["files"]) == {HEAD_FILE}
    assert len(manifest["files"][HEAD_FILE]["sha256"]) == 64
    read_package(folder)  # the service's gate accepts it


def test_onnx_matches_pytorch_for_any_batch_and_time(tiny_package: tuple[Path, Path]) -> None:
    checkpoint, folder = tiny_package
    model = load_checkpoint(checkpoint)
    engine = OnnxEngine.load(folder, providers=["cpu"])
    gen = torch.Generator().manual_seed(3)
    for batch, time in [(1, 8), (5, 8), (2, 3), (4, 21)]:  # dynamic batch and time
        features = torch.randn(batch, time, FEATURE_DIM, generator=gen)
        mask = torch.ones(batch, time, dtype=torch.long)
        mask[0, : time // 2] = 0
        with torch.no_grad():
            expected = model.class_logits(features, mask).numpy()
        got = engine.logits(features.numpy(), mask.numpy())
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_mask_is_honoured(tiny_package: tuple[Path, Path]) -> None:
    """Masked rows change nothing: garbage under padding = a shorter, unpadded window."""
    _, folder = tiny_package
    engine = OnnxEngine.load(folder, providers=["cpu"])
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(1, 5, FEATURE_DIM)).astype(np.float32)
    padded = np.concatenate(
        [rng.normal(size=(1, 3, FEATURE_DIM)).astype(np.float32) * 50, frames], 1
    )
    mask = np.array([[0, 0, 0, 1, 1, 1, 1, 1]])
    short = engine.logits(frames, np.ones((1, 5), np.int64))
    np.testing.assert_allclose(engine.logits(padded, mask), short, atol=1e-4)
    # ...and the mask is not ignored: the same rows unmasked give other logits.
    assert np.abs(engine.logits(padded, np.ones_like(mask)) - short).max() > 1e-3


@pytest.mark.integration
def test_merge_leaves_tied_embeddings_alone() -> None:
    model = tiny_model("gad")
    train_steps(model, steps=2)
    embed = model._embed_tokens.weight.detach().clone()
    features = torch.randn(2, 6, FEATURE_DIM)
    with torch.no_grad():
        before = model.class_logits(features)
        prepare_for_export(model)
        after = model.class_logits(features)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=0)
    torch.testing.assert_close(model._embed_tokens.weight, embed, atol=0, rtol=0)
    assert not any("lora_" in name for name, _ in model.named_parameters())


def test_refuses_overwrite_without_force(tiny_package: tuple[Path, Path], tmp_path: Path) -> None:
    checkpoint, folder = tiny_package
    with pytest.raises(CheckpointError, match="--force"):
        export_package(checkpoint, folder.parent.parent)
    stale = tmp_path / "m" / "2"  # an earlier export in the way: --force replaces it whole
    stale.mkdir(parents=True)
    (stale / "old.onnx").write_bytes(b"stale")
    again = export_package(checkpoint, tmp_path, name="m", version="2", verify=False, force=True)
    assert again.folder == stale and (stale / HEAD_FILE).is_file()
    assert not (stale / "old.onnx").exists()
    # the Manifest the export returns is the one it wrote (unverified: "verify" is null)
    written = json.loads((again.folder / MANIFEST_FILE).read_text())
    assert written == again.manifest.to_json() and written["verify"] is None
    assert read_package(again.folder).info == again.manifest == again.package.info


def test_verify_fails_above_tolerance(tiny_package: tuple[Path, Path], tmp_path: Path) -> None:
    checkpoint, _ = tiny_package
    with pytest.raises(CheckpointError, match="differs from PyTorch"):
        export_package(checkpoint, tmp_path, tolerance=0.0 - 1.0)
    assert not (tmp_path / "run" / "1").exists()  # nothing half-written is left


def test_generative_checkpoint_is_refused(tmp_path: Path) -> None:
    save_checkpoint(tiny_model("generative"), tmp_path / "gen")
    with pytest.raises(CheckpointError, match="no \\[CLS\\] head"):
        export_package(tmp_path / "gen", tmp_path / "out")
