"""Streaming attention: the banded training pass and the per-frame step are one model."""

from pathlib import Path

import pytest
import torch

from model.gad import GADClassifier
from model.streaming.kernel import streaming_attention
from model.streaming.runner import StreamingGAD
from runtime.errors import ConfigError
from tests.model.helpers import FEATURE_DIM, NAMES, smol_model, tiny_model, train_steps

pytestmark = pytest.mark.integration  # trains streaming models; equality over 300-frame passes


def step_all(stream: StreamingGAD, features: torch.Tensor) -> torch.Tensor:
    state = stream.start(features.shape[0])
    with torch.no_grad():
        return torch.stack(
            [stream.step(features[:, t], state) for t in range(features.shape[1])], 1
        )


@pytest.fixture(scope="module")
def tiny() -> GADClassifier:
    model = tiny_model("gad")
    train_steps(model, steps=3)  # LoRA B starts at zero: train so the adapters matter
    return model


def test_training_pass_equals_the_step_loop_on_300_frames(tiny: GADClassifier) -> None:
    stream = StreamingGAD(tiny, window=8)
    features = torch.randn(2, 300, FEATURE_DIM, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        banded = stream.frame_logits(features)
    stepped = step_all(stream, features)
    assert banded.shape == (2, 300, len(NAMES))
    torch.testing.assert_close(stepped, banded, rtol=0, atol=1e-4)


def test_a_frame_reaches_exactly_layers_times_window_minus_one_frames_ahead(
    tiny: GADClassifier,
) -> None:
    window, t = 5, 30
    layers = tiny.lm.get_base_model().config.num_hidden_layers
    stream = StreamingGAD(tiny, window=window)
    features = torch.randn(1, 40, FEATURE_DIM, generator=torch.Generator().manual_seed(2))
    reach = layers * (window - 1)  # one band per layer

    def moved(back: int) -> float:
        changed = features.clone()
        changed[:, t - back] += 3.0
        with torch.no_grad():
            return float(
                (stream.frame_logits(changed) - stream.frame_logits(features))[0, t].abs().max()
            )

    assert moved(window - 1) > 1e-3  # in the frame's own window
    assert moved(reach) > 0  # through the layers
    assert moved(reach + 1) == 0.0  # out of reach: exactly nothing
    later = features.clone()
    later[:, t + 1 :] += 3.0
    with torch.no_grad():
        torch.testing.assert_close(
            stream.frame_logits(later)[:, : t + 1],
            stream.frame_logits(features)[:, : t + 1],
            rtol=0,
            atol=0,
        )


def test_padding_frames_are_never_read(tiny: GADClassifier) -> None:
    stream = StreamingGAD(tiny, window=4)
    gen = torch.Generator().manual_seed(3)
    features = torch.randn(1, 12, FEATURE_DIM, generator=gen)
    padded = torch.cat([torch.randn(1, 5, FEATURE_DIM, generator=gen), features], dim=1)
    mask = torch.tensor([[0] * 5 + [1] * 12])
    with torch.no_grad():
        torch.testing.assert_close(
            stream.frame_logits(padded, mask)[:, 5:],
            stream.frame_logits(features),
            rtol=0,
            atol=1e-5,
        )


def test_every_frame_is_supervised_and_trains() -> None:
    model = tiny_model("discriminative", seed=1)
    stream = StreamingGAD(model, window=4)
    gen = torch.Generator().manual_seed(4)
    features = torch.randn(4, 24, FEATURE_DIM, generator=gen)
    labels = (features[..., 0] > 0).long()  # the label is in the frame itself
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=3e-3)
    model.train()
    losses = []
    for _ in range(30):
        logits = stream.frame_logits(features)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    assert model.connector.parameters().__next__().grad is not None
    assert losses[-1] < 0.5 * losses[0]


def test_bad_use_is_refused(tiny: GADClassifier) -> None:
    with pytest.raises(ConfigError, match="at least 1 frame"):
        StreamingGAD(tiny, window=0)
    with pytest.raises(ConfigError, match=r"\[CLS\] head"):
        StreamingGAD(tiny_model("generative"), window=4)
    with pytest.raises(ConfigError, match="outside a streaming pass"):
        streaming_attention(tiny, torch.zeros(1, 1, 1, 2), torch.zeros(1, 1, 1, 2), None, None)


@pytest.mark.slow
def test_smollm2_training_pass_equals_the_step_loop(gad_cache_dir: Path) -> None:
    model = smol_model(gad_cache_dir).eval()
    stream = StreamingGAD(model, window=16)
    # 80 frames: the 16-frame rings wrap five times (the 300-frame drift check is the tiny
    # model's, above; here it is the real 30-layer architecture that must match)
    features = torch.randn(1, 80, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        banded = stream.frame_logits(features)
    torch.testing.assert_close(step_all(stream, features), banded, rtol=0, atol=1e-4)
