import pytest
import torch

from model.gad import count_parameters
from runtime.errors import ConfigError
from tests.model.helpers import FEATURE_DIM, NAMES, random_batch, tiny_model, train_steps

# Padding changes only which (masked) keys exist, so the maths is the same up to the
# order of float32 reductions: observed ≤ 1e-6; we allow 1e-5.
PAD_ATOL = 1e-5


@pytest.mark.parametrize("kind", ["generative", "discriminative", "gad"])
def test_each_kind_trains(kind: str) -> None:
    model = tiny_model(kind)
    losses = train_steps(model, steps=25)
    assert losses[-1] < 0.5 * losses[0], losses


def test_gad_loss_is_cls_plus_weighted_lm() -> None:
    model = tiny_model("gad", lm_weight=0.5)
    features, labels, previous = random_batch()
    with torch.no_grad():
        out = model(features, None, labels, previous)
    assert out.cls_loss is not None and out.lm_loss is not None
    torch.testing.assert_close(out.loss, out.cls_loss + 0.5 * out.lm_loss)


def test_gad_cls_logits_in_training_match_the_inference_pass() -> None:
    # The LM target after [CLS] cannot change [CLS] (causal attention): the logits
    # trained on are exactly the ones served.
    model = tiny_model("gad")
    features, labels, previous = random_batch()
    with torch.no_grad():
        trained = model(features, None, labels, previous).logits
        served = model.class_logits(features)
    torch.testing.assert_close(trained, served, rtol=0, atol=PAD_ATOL)


def test_background_weight_scales_only_background_samples() -> None:
    model = tiny_model("discriminative", background_weight=0.0)
    features, _, _ = random_batch()
    background = torch.zeros(features.shape[0], dtype=torch.long)
    with torch.no_grad():
        assert float(model(features, None, background).loss) == 0.0
        assert float(model(features, None, background + 1).loss) > 0.0


@pytest.mark.parametrize("kind", ["discriminative", "gad"])
def test_padded_window_gives_the_unpadded_logits(kind: str) -> None:
    model = tiny_model(kind)
    train_steps(model, steps=3)  # non-zero LoRA
    gen = torch.Generator().manual_seed(1)
    short = torch.randn(1, 3, FEATURE_DIM, generator=gen)
    long = torch.randn(1, 7, FEATURE_DIM, generator=gen)
    batch = torch.zeros(2, 7, FEATURE_DIM)
    batch[0, 4:] = short[0]
    batch[0, :4] = 123.0  # garbage in the padding must not matter
    batch[1] = long[0]
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[0, :4] = 0
    with torch.no_grad():
        mixed = model.class_logits(batch, mask)
        alone = torch.cat([model.class_logits(short), model.class_logits(long)])
    torch.testing.assert_close(mixed, alone, rtol=0, atol=PAD_ATOL)


def test_class_logits_is_one_pass_with_shape() -> None:
    model = tiny_model("gad")
    features, _, _ = random_batch(batch=3, steps=8)
    calls = 0

    def count(*_: object) -> None:
        nonlocal calls
        calls += 1

    decoder = model.lm.get_base_model().get_decoder()
    handle = decoder.register_forward_hook(count)
    with torch.no_grad():
        logits = model.class_logits(features)
    handle.remove()
    assert logits.shape == (3, len(NAMES))
    assert calls == 1


@pytest.mark.parametrize("kind", ["generative", "gad"])
def test_constrained_decoding_returns_only_class_names(kind: str) -> None:
    model = tiny_model(kind, seed=3)  # untrained: free decoding emits garbage
    features, _, _ = random_batch(batch=6, steps=4, seed=5)
    out = model.generate(features, constrained=True)
    assert all(out.exact), out.texts
    assert [NAMES.index(t) for t in out.texts] == out.indices


def test_trained_generative_model_decodes_its_labels() -> None:
    model = tiny_model("generative")
    train_steps(model, steps=100)
    features, labels, _ = random_batch()
    for constrained in (True, False):
        out = model.generate(features, constrained=constrained)
        assert out.indices == labels.tolist(), (constrained, out.texts)


def test_free_decoding_maps_text_to_the_nearest_class() -> None:
    model = tiny_model("generative", seed=3)
    features, _, _ = random_batch(batch=4, steps=4, seed=5)
    out = model.generate(features, constrained=False)
    assert all(0 <= i < len(NAMES) for i in out.indices)
    # The mapping itself: edit distance to the names.
    assert model._to_classes(
        [model.tokenizer.encode(" opn drawr", add_special_tokens=False)], tuple(NAMES)
    ).indices == [1]


def test_kv_cache_decoding_matches_full_recompute() -> None:
    model = tiny_model("generative", seed=2)
    features, _, _ = random_batch(batch=2, steps=4, seed=7)
    steps = 6
    cached = model.generate(features, constrained=False, max_new_tokens=steps)
    # Reference: recompute the whole sequence for every new token, no cache.
    tail = model.assistant_ids.expand(2, -1)
    tokens = []
    with torch.no_grad():
        for _ in range(steps):
            embeds, attention = model._sequence(features, None, tail_ids=tail, with_cls=False)
            hidden = model._decoder(
                embeds, attention, model._positions(attention)
            ).last_hidden_state
            nxt = model._lm_head(hidden[:, -1]).argmax(-1)
            tokens.append(nxt)
            tail = torch.cat([tail, nxt[:, None]], dim=1)
    reference = torch.stack(tokens, dim=1).tolist()
    eos = set(model.trie.terminators)
    for row, text in zip(reference, cached.texts, strict=True):
        cut = next((i for i, t in enumerate(row) if t in eos), len(row))
        expected = model.tokenizer.decode(row[:cut], skip_special_tokens=True).split(",")[0].strip()
        assert text == expected


def test_generative_model_has_no_head() -> None:
    model = tiny_model("generative")
    with pytest.raises(ConfigError, match="no \\[CLS\\] head"):
        model.class_logits(torch.zeros(1, 2, FEATURE_DIM))


def test_wrong_shapes_are_clear_errors() -> None:
    model = tiny_model("gad")
    with pytest.raises(ConfigError, match=r"features must be \[batch, time, 16\], got \[1, 2, 8\]"):
        model.class_logits(torch.zeros(1, 2, 8))
    with pytest.raises(ConfigError, match="mask must be"):
        model.class_logits(torch.zeros(1, 2, FEATURE_DIM), torch.ones(1, 3))
    with pytest.raises(ConfigError, match=r"labels must lie in 0\.\.5"):
        model(torch.zeros(1, 2, FEATURE_DIM), None, torch.tensor([6]))


def test_lora_freezes_the_backbone_and_trains_the_rest() -> None:
    model = tiny_model("gad")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_" in n for n in trainable)
    assert any(n.startswith("connector.") for n in trainable)
    assert "cls_embedding" in trainable and any(n.startswith("head.") for n in trainable)
    assert not any(n.startswith("lm.") and "lora_" not in n for n in trainable)
    assert any("lm_head" in n and "lora_" in n for n in trainable)  # GAD adapts lm_head
    disc = {n for n, p in tiny_model("discriminative").named_parameters() if p.requires_grad}
    assert not any("lm_head" in n for n in disc)


def test_rank_zero_freezes_the_backbone_entirely() -> None:
    from model.config import LoraSettings

    model = tiny_model("discriminative", lora=LoraSettings(rank=0))
    _, trainable = count_parameters(model)
    head_and_connector = sum(
        p.numel() for n, p in model.named_parameters() if not n.startswith("lm.")
    )
    assert trainable == head_and_connector


def test_missing_lora_targets_are_a_clear_error() -> None:
    from model.config import LoraSettings

    with pytest.raises(ConfigError, match=r"\['c_attn'\] do not exist"):
        tiny_model("gad", lora=LoraSettings(rank=4, alpha=8, target_modules=("c_attn",)))
