"""Several LLM tokens per clip row (model/connector.py, config `tokens_per_frame`):
connector shapes and layouts, the separator between rows, k = 1 bit-identical to the one
token per row connector, and the clip model reading k tokens per row exactly as it reads
one (padding, checkpoints, generative scores)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from model.checkpoint import load_checkpoint, save_checkpoint
from model.clip import STEP, TASK, ClipClassifier
from model.config import ModelConfig, TargetRules
from model.connector import Connector
from runtime.errors import ConfigError
from tests.model.helpers import FEATURE_DIM, tiny_config
from tests.model.test_clip import clip_batch, clip_config, clip_model, train

HIDDEN = 8


class OneTokenConnector(nn.Module):
    """The connector before k tokens per row existed, as it was written."""

    def __init__(self, feature_dim: int, hidden_size: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(feature_dim, hidden_size)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_size, hidden_size)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(features)))


def test_one_token_per_row_is_the_old_connector_bit_for_bit() -> None:
    torch.manual_seed(3)
    old = OneTokenConnector(FEATURE_DIM, HIDDEN)
    torch.manual_seed(3)
    new = Connector(FEATURE_DIM, HIDDEN)
    assert new.state_dict().keys() == old.state_dict().keys()  # old checkpoints load
    for key, tensor in old.state_dict().items():
        assert torch.equal(new.state_dict()[key], tensor)  # same initialisation
    features = torch.randn(2, 7, FEATURE_DIM)
    assert torch.equal(new(features), old(features))
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1], [1] * 7])
    assert new.token_mask(mask) is mask and new.per_row == 1


def test_expand_gives_k_tokens_per_row_with_the_separator_between_rows() -> None:
    torch.manual_seed(0)
    separator = torch.randn(1, HIDDEN)
    connector = Connector(FEATURE_DIM, HIDDEN, tokens=3, separator=separator)
    features = torch.randn(2, 4, FEATURE_DIM)
    tokens = connector(features)
    assert connector.per_row == 4
    assert tokens.shape == (2, 4 * 3 + 3, HIDDEN)  # 3 tokens a row, "," between rows
    # Row t's tokens are Linear(H→3H)'s output cut in three, in order, then the separator.
    whole = connector.fc2(connector.act(connector.fc1(features))).unflatten(-1, (3, HIDDEN))
    for t in range(4):
        torch.testing.assert_close(tokens[:, 4 * t : 4 * t + 3], whole[:, t])
        if t < 3:
            torch.testing.assert_close(tokens[:, 4 * t + 3], separator.expand(2, -1))
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    assert connector.token_mask(mask).tolist() == [
        [0] * 4 + [1] * 11,  # the padded row and the separator after it are padding
        [1] * 15,
    ]
    assert "separator" not in connector.state_dict()  # frozen text: rebuilt, never saved


def test_split_reads_a_row_as_k_token_features_through_one_shared_mlp() -> None:
    torch.manual_seed(1)
    connector = Connector(FEATURE_DIM, HIDDEN, tokens=4, layout="split")
    assert connector.fc1.in_features == FEATURE_DIM // 4 and connector.fc2.out_features == HIDDEN
    features = torch.randn(3, 5, FEATURE_DIM)
    tokens = connector(features)
    assert tokens.shape == (3, 5 * 4, HIDDEN)  # no separator given: rows back to back
    part = FEATURE_DIM // 4
    for t in range(5):
        for j in range(4):
            piece = features[:, t, j * part : (j + 1) * part]
            expected = connector.fc2(connector.act(connector.fc1(piece)))
            torch.testing.assert_close(tokens[:, 4 * t + j], expected)
    with pytest.raises(ConfigError, match="does not split"):
        Connector(FEATURE_DIM, HIDDEN, tokens=3, layout="split")


def test_config_fields_default_to_one_token_and_old_configs_load_unchanged() -> None:
    saved = clip_config().to_dict()
    for key in ("tokens_per_frame", "frame_tokens", "frame_separator"):
        saved.pop(key)  # a checkpoint written before these keys
    old = ModelConfig.from_dict(saved)
    assert (old.tokens_per_frame, old.frame_separator) == (1, "")
    assert clip_config(tokens_per_frame=4).frame_separator == ","  # the authors' separator
    assert clip_config(tokens_per_frame=4, frame_separator="").frame_separator == ""
    restored = ModelConfig.from_dict(clip_config(tokens_per_frame=4).to_dict())
    assert restored == clip_config(tokens_per_frame=4)
    with pytest.raises(ConfigError, match="tokens_per_frame must be >= 1"):
        clip_config(tokens_per_frame=0)
    with pytest.raises(ConfigError, match="not a multiple"):
        clip_config(tokens_per_frame=3, frame_tokens="split")
    with pytest.raises(ConfigError, match="frame_tokens must be"):
        clip_config(frame_tokens="tile")
    with pytest.raises(ConfigError, match="for the clip model"):
        tiny_config(tokens_per_frame=2)
    with pytest.raises(ConfigError, match="for the clip model"):
        tiny_config(frame_separator=",")


def test_a_one_token_clip_model_is_unchanged() -> None:
    model = clip_model()
    assert type(model.connector) is Connector and model.connector.one_token_per_row
    assert model.clip_prompt.separator == ()
    features, *_ = clip_batch()
    prefix = model._question_prefix(torch.full((6,), STEP))
    embeds, attention = model._sequence(features, None, with_cls=True, prefix=prefix)
    assert embeds.shape[1] == attention.shape[1] == prefix[1].shape[1] + 5 + 1  # a row a token


@pytest.mark.parametrize("layout", ["expand", "split"])
def test_the_clip_sequence_lays_out_k_tokens_and_separators(layout: str) -> None:
    model = clip_model(tokens_per_frame=2, frame_tokens=layout)
    comma = model.clip_prompt.separator
    assert comma == tuple(model.tokenizer(",", add_special_tokens=False)["input_ids"])
    features = torch.randn(2, 5, FEATURE_DIM)
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    prefix = model._question_prefix(torch.tensor([STEP, TASK]))
    embeds, attention = model._sequence(features, mask, with_cls=True, prefix=prefix)
    start = prefix[1].shape[1]
    frames = 5 * 2 + 4 * len(comma)
    assert embeds.shape[1] == attention.shape[1] == start + frames + 1
    assert attention[0, start : start + frames].tolist() == [0] * 6 + [1] * 8
    assert attention[1, start : start + frames].tolist() == [1] * frames
    # The separator is the LM's own "," embedding, between rows.
    with torch.no_grad():
        expected = model._embed_tokens(torch.tensor(comma))
    torch.testing.assert_close(embeds[1, start + 2 : start + 3], expected)
    torch.testing.assert_close(embeds[0, start + frames - 3 : start + frames - 2], expected)


def test_k_tokens_padding_does_not_change_the_answers() -> None:
    model = clip_model(tokens_per_frame=3)
    train(model, 3)
    model.eval()
    features, *_ = clip_batch()
    padded = torch.full((1, 9, FEATURE_DIM), 77.0)
    padded[0, 4:] = features[0]
    mask = torch.zeros(1, 9, dtype=torch.long)
    mask[0, 4:] = 1
    with torch.no_grad():
        for a, b in zip(
            model.clip_logits(features[:1]), model.clip_logits(padded, mask), strict=True
        ):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_k_tokens_change_what_the_model_reads() -> None:
    one, two = clip_model(seed=0), clip_model(seed=0, tokens_per_frame=2)
    assert two.connector.fc2.out_features == 2 * one.connector.fc2.out_features
    features, *_ = clip_batch()
    with torch.no_grad():
        assert not torch.allclose(one.clip_logits(features)[0], two.clip_logits(features)[0])


@pytest.mark.integration
def test_a_k_token_model_learns_and_round_trips_through_a_checkpoint(tmp_path) -> None:
    model = clip_model(tokens_per_frame=2)
    losses = train(model, 60)
    assert losses[-1] < 0.2 * losses[0], losses
    model.eval()
    save_checkpoint(model, tmp_path / "ckpt", extra={"data": {"fps": 2.0}})
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert isinstance(loaded, ClipClassifier) and loaded.config == model.config
    torch.testing.assert_close(loaded.connector.separator, model.connector.separator)
    features, _mask, labels, questions, _ = clip_batch()
    with torch.no_grad():
        for a, b in zip(model.clip_logits(features), loaded.clip_logits(features), strict=True):
            torch.testing.assert_close(a, b)
        steps, tasks = loaded.question_logits(features, None, questions)
    answers = torch.where(questions == TASK, tasks.argmax(-1), steps.argmax(-1))
    assert answers.tolist() == labels.tolist()


@pytest.mark.integration
def test_generative_scores_read_k_tokens_like_the_training_pass() -> None:
    # The KV-cached scores path and the training forward lay out the same sequence (the
    # LM loss on the answer alone here: not on "\nAssistant:" and the separators).
    model = clip_model("generative", tokens_per_frame=2, targets=TargetRules(lm_on_prompt=False))
    train(model, 5)
    model.eval()
    gen = torch.Generator().manual_seed(2)
    clip = torch.randn(1, 4, FEATURE_DIM, generator=gen)
    padded = torch.cat([torch.zeros(1, 2, FEATURE_DIM), clip], dim=1)
    mask = torch.tensor([[0, 0, 1, 1, 1, 1]])
    tokens = model.clip_prompt.steps
    with torch.no_grad():
        scores = model.question_log_likelihoods(padded, mask, STEP)
        for c in range(len(tokens)):
            out = model(clip, None, torch.tensor([c]), torch.tensor([STEP]), torch.tensor([0]))
            assert out.lm_loss is not None
            expected = -out.lm_loss * (len(tokens[c]) + 1)
            torch.testing.assert_close(scores[0, c], expected, rtol=0, atol=1e-4)
        decoded = model.generate_clip(padded, mask, STEP, constrained=True)
    assert decoded.exact == [True]
