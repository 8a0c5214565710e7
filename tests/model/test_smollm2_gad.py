"""The GAD classifier on a real pretrained LM (SmolLM2-135M, converted from its GGUF)."""

from pathlib import Path

import pytest
import torch

from model.gad import GADClassifier
from tests.model.helpers import NAMES, smol_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol_gad(gad_cache_dir: Path) -> GADClassifier:
    return smol_model(gad_cache_dir)


def test_padding_is_invisible_on_a_real_backbone(smol_gad: GADClassifier) -> None:
    gen = torch.Generator().manual_seed(0)
    window = torch.randn(1, 5, 32, generator=gen)
    padded = torch.cat([torch.randn(1, 3, 32, generator=gen), window], dim=1)
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        torch.testing.assert_close(
            smol_gad.class_logits(padded, mask), smol_gad.class_logits(window), rtol=0, atol=1e-4
        )


def test_one_gad_step_lowers_the_loss(smol_gad: GADClassifier) -> None:
    gen = torch.Generator().manual_seed(1)
    features = torch.randn(2, 6, 32, generator=gen)
    labels, previous = torch.tensor([1, 3]), torch.tensor([0, -1])
    params = [p for p in smol_gad.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    smol_gad.train()
    first = smol_gad(features, None, labels, previous)
    assert first.lm_loss is not None and first.cls_loss is not None
    first.loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    smol_gad.eval()
    with torch.no_grad():
        after = smol_gad(features, None, labels, previous).loss
    assert after.item() < first.loss.item()
    out = smol_gad.generate(features[:1], constrained=True)
    assert out.exact == [True] and out.texts[0] in NAMES
