"""Streaming GAD: each frame's label text after its [CLS] sees what the [CLS] sees, is
seen by nothing else, and its LM loss trains — without changing what is served."""

from __future__ import annotations

import pytest
import torch

from model.gad import GADClassifier
from model.lora import base_model
from model.streaming.objective import StreamingObjective
from model.streaming.runner import StreamingGAD
from tests.model.helpers import FEATURE_DIM, NAMES, tiny_model

pytestmark = pytest.mark.integration  # trains a streaming GAD model

WINDOW = 4


def streaming_gad(seed: int = 0) -> GADClassifier:
    return tiny_model("gad", seed, attention="streaming", stream_window=WINDOW).eval()


def tails(model: GADClassifier, labels: torch.Tensor) -> torch.Tensor:
    """Tail ids [B, N, A] ("\\nAssistant: {label}<eos>") as the objective builds them."""
    return StreamingObjective(model)._tails(labels, None)[0]


def one_layer(model: GADClassifier) -> GADClassifier:
    decoder = base_model(model.lm).get_decoder()
    decoder.layers = decoder.layers[:1]
    decoder.config.num_hidden_layers = 1
    return model


def test_label_text_equals_a_causal_pass_over_what_its_cls_sees() -> None:
    # With one layer the streaming layout of frame t's text is an ordinary causal sequence:
    # prompt | the W frames it sees | [CLS] | its text, at the slots the stream uses.
    model = one_layer(streaming_gad())
    stream = StreamingGAD(model, WINDOW)
    gen = torch.Generator().manual_seed(3)
    features = torch.randn(1, 9, FEATURE_DIM, generator=gen)
    labels = torch.randint(0, len(NAMES), (1, 9), generator=gen)
    ids = tails(model, labels)
    with torch.no_grad():
        _, tail_hidden = stream.frame_pass(features, None, ids)
        assert tail_hidden is not None
        p = stream.prompt
        for t in (1, 5, 8):  # a window still filling, and full ones
            first = max(0, t - WINDOW + 1)
            frames = features[:, first : t + 1]
            embeds, attention = model._sequence(frames, None, tail_ids=ids[:, t], with_cls=True)
            slots = torch.arange(p + WINDOW - frames.shape[1], p + WINDOW + 1 + ids.shape[-1])
            positions = torch.cat([torch.arange(p), slots])[None]
            hidden = model._decoder(embeds, attention, positions).last_hidden_state
            torch.testing.assert_close(
                tail_hidden[:, t], hidden[:, -ids.shape[-1] :], rtol=0, atol=1e-5
            )


def test_label_text_is_private_and_leaves_the_served_logits_unchanged() -> None:
    model = streaming_gad(seed=1)
    stream = StreamingGAD(model, WINDOW)
    gen = torch.Generator().manual_seed(4)
    features = torch.randn(2, 12, FEATURE_DIM, generator=gen)
    labels = torch.randint(0, len(NAMES), (2, 12), generator=gen)
    ids = tails(model, labels)
    with torch.no_grad():
        cls, tail = stream.frame_pass(features, None, ids)
        alone, _ = stream.frame_pass(features)
        torch.testing.assert_close(cls, alone, rtol=0, atol=1e-6)  # nothing reads the text
        other = ids.clone()
        other[:, 6, -2] = (other[:, 6, -2] + 7) % 200  # frame 6's text changes
        _, moved = stream.frame_pass(features, None, other)
    assert tail is not None and moved is not None
    changed = (moved - tail).abs().amax(dim=(0, 2, 3))
    assert changed[6] > 0 and changed[:6].max() == 0 and changed[7:].max() == 0
    # within frame 6's text, tokens before the changed one do not see it
    per_token = (moved[:, 6] - tail[:, 6]).abs().amax(dim=(0, 2))
    assert per_token[:-2].max() == 0 and per_token[-2] > 0


def test_streaming_gad_learns_the_label_text_of_every_frame() -> None:
    model = tiny_model("gad", 2, attention="streaming", stream_window=WINDOW)
    objective = StreamingObjective(model)
    gen = torch.Generator().manual_seed(5)
    features = torch.randn(3, 20, FEATURE_DIM, generator=gen)
    labels = (features[..., 0] > 0).long() + 2 * (features[..., 1] > 0).long()
    labels[0, :3] = -100  # unsupervised frames get neither loss
    previous = torch.full_like(labels, -1)
    previous[1, 5:] = 4
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=3e-3)
    first = None
    for _ in range(25):
        out = objective(features, torch.ones(3, 20), labels, previous)
        assert out.lm_loss is not None and out.cls_loss is not None
        first = first or (out.cls_loss.item(), out.lm_loss.item())
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    assert out.lm_loss.item() < 0.5 * first[1]
    assert out.cls_loss.item() < 0.7 * first[0]
    torch.testing.assert_close(out.loss, out.cls_loss + model.config.lm_weight * out.lm_loss)
    # the targets: "\nAssistant:" (its "\n" predicted by the frame's [CLS], as the
    # windowed model's), label, ", previous" where given, <eos>; none for unsupervised frames
    _, targets = objective._tails(labels, previous)
    prompt = model.prompt
    assert targets[0, 0].eq(-100).all()
    row = targets[1, 7][targets[1, 7] != -100].tolist()
    assert row == [*prompt.assistant, *prompt.answer(int(labels[1, 7]), 4)]


def test_discriminative_streaming_has_no_lm_loss() -> None:
    model = tiny_model("discriminative", 0, attention="streaming", stream_window=WINDOW)
    out = StreamingObjective(model)(
        torch.randn(1, 6, FEATURE_DIM), torch.ones(1, 6), torch.zeros(1, 6, dtype=torch.long)
    )
    assert out.lm_loss is None and out.loss == out.cls_loss


def test_the_step_loop_serves_a_streaming_gad_model() -> None:
    model = tiny_model("gad", 3, attention="streaming", stream_window=WINDOW).eval()
    stream = StreamingGAD(model, WINDOW)
    features = torch.randn(1, 15, FEATURE_DIM, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        banded = stream.frame_logits(features)
        state = stream.start(1)
        stepped = torch.stack([stream.step(features[:, t], state) for t in range(15)], dim=1)
    torch.testing.assert_close(stepped, banded, rtol=0, atol=1e-5)
