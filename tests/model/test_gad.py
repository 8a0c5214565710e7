import pytest
import torch

from model.config import TargetRules
from model.gad import count_parameters
from runtime.errors import ConfigError
from tests.model.helpers import FEATURE_DIM, NAMES, random_batch, tiny_model, train_steps

pytestmark = pytest.mark.integration  # trains tiny GAD models: seconds each

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


def test_lm_targets_generative_label_only_gad_label_and_previous() -> None:
    labels, previous = torch.tensor([1, 2, 3]), torch.tensor([2, -1, 0])
    generative = tiny_model("generative")
    p = generative.prompt
    ids, valid = generative._answers(labels, previous)
    # The authors' generative classifier learns "{label}<eos>": no previous action.
    expected = [[*p.labels[1], p.eos], [*p.labels[2], p.eos], [*p.labels[3], p.eos]]
    assert [row[: int(v.sum())] for row, v in zip(ids.tolist(), valid, strict=True)] == expected
    gad = tiny_model("gad")
    ids, valid = gad._answers(labels, previous)
    expected = [
        [*p.labels[1], *p.previous[2], p.eos],
        [*p.labels[2], p.eos],  # -1: no previous action
        [*p.labels[3], *p.previous[0], p.eos],
    ]
    assert [row[: int(v.sum())] for row, v in zip(ids.tolist(), valid, strict=True)] == expected


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
    # Its label scores rank the trained label first too.
    assert model.label_log_likelihoods(features).argmax(-1).tolist() == labels.tolist()


def test_free_decoding_maps_text_to_the_nearest_class() -> None:
    model = tiny_model("generative", seed=3)
    features, _, _ = random_batch(batch=4, steps=4, seed=5)
    out = model.generate(features, constrained=False)
    assert all(0 <= i < len(NAMES) for i in out.indices)
    # The mapping itself: edit distance to the names.
    assert model._to_classes(
        [model.tokenizer.encode(" opn drawr", add_special_tokens=False)], tuple(NAMES)
    ).indices == [1]


def _edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def test_decoding_is_free_by_default_and_maps_off_label_text_to_the_nearest_label() -> None:
    model = tiny_model("generative", seed=3)  # untrained: free decoding emits garbage
    features, _, _ = random_batch(batch=6, steps=4, seed=5)
    out = model.generate(features)
    assert out.texts == model.generate(features, constrained=False).texts
    assert not all(out.exact), out.texts  # off-label text came out: nothing constrained it
    labels = [model.tokenizer.decode(ids).strip() for ids in model.prompt.labels]
    for text, index, exact in zip(out.texts, out.indices, out.exact, strict=True):
        distances = [_edit_distance(text, label) for label in labels]
        assert index == distances.index(min(distances)), (text, distances)
        assert exact == (text in labels)


@pytest.mark.parametrize("kind", ["generative", "gad"])
def test_label_log_likelihoods_are_the_lm_loss_of_each_label_answer(kind: str) -> None:
    # Computed another way: the training forward's LM loss (mean over the answer's tokens)
    # on " {label}" <eos> (" background" without), one window and one class at a time,
    # with no KV cache. The LM loss on the answer alone here (not on "\nAssistant:").
    model = tiny_model(kind, targets=TargetRules(lm_on_prompt=False))
    train_steps(model, steps=5)  # non-zero LoRA, a model that prefers some labels
    gen = torch.Generator().manual_seed(2)
    windows = [torch.randn(1, n, FEATURE_DIM, generator=gen) for n in (3, 5)]
    batch = torch.zeros(2, 5, FEATURE_DIM)
    batch[0, 2:], batch[1] = windows[0][0], windows[1][0]
    mask = torch.ones(2, 5, dtype=torch.long)
    mask[0, :2] = 0  # left padding
    with torch.no_grad():
        scores = model.label_log_likelihoods(batch, mask)
        one_class_at_a_time = model.label_log_likelihoods(batch, mask, rows_per_pass=1)
        expected = torch.zeros(2, len(NAMES))
        for b, window in enumerate(windows):
            for c in range(len(NAMES)):
                out = model(window, None, torch.tensor([c]))
                assert out.lm_loss is not None
                expected[b, c] = -out.lm_loss * len(model.prompt.scored(c))
    assert scores.shape == (2, len(NAMES))
    torch.testing.assert_close(scores, expected, rtol=0, atol=1e-4)
    torch.testing.assert_close(one_class_at_a_time, scores, rtol=0, atol=1e-5)
    assert torch.all(scores < 0)
    probabilities = torch.softmax(scores, -1)  # the generative per-frame scores
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(2))


def test_label_log_likelihoods_take_one_pass_over_the_window() -> None:
    model = tiny_model("generative")
    features, _, _ = random_batch(batch=3, steps=4)
    lengths = []

    def record(_module: object, _args: object, kwargs: dict, _out: object) -> None:
        lengths.append(tuple(kwargs["inputs_embeds"].shape[:2]))

    decoder = model.lm.get_base_model().get_decoder()
    handle = decoder.register_forward_hook(record, with_kwargs=True)
    with torch.no_grad():
        model.label_log_likelihoods(features, rows_per_pass=6)
    handle.remove()
    width = max(map(len, model.prompt.labels)) + 1  # answer + <eos>
    prompt = len(model.prompt.prefix) + 4 + len(model.prompt.assistant)
    # The window once, then the answers of 2 classes x 3 windows per pass, cache reused.
    assert lengths[0] == (3, prompt)
    assert lengths[1:] == [(6, width - 1)] * 3


@pytest.mark.parametrize("kind", ["generative", "gad"])
def test_one_prefill_serves_the_scores_and_both_decodings(kind: str) -> None:
    # An evaluation reads each window once and continues it three ways: the answers'
    # log-likelihoods, the free decode and the constrained one. Each is what it is alone,
    # and the shared prefill is left as it was (each continuation builds its own cache).
    model = tiny_model(kind, seed=3)  # untrained: free and constrained decodes differ
    features, _, _ = random_batch(batch=5, steps=4, seed=5)
    lengths = []

    def record(_module: object, _args: object, kwargs: dict, _out: object) -> None:
        lengths.append(kwargs["inputs_embeds"].shape[1])

    with torch.no_grad():
        read = model.prefill(features)
        before = [(k.clone(), v.clone()) for k, v in read.kv]
        decoder = model.lm.get_base_model().get_decoder()
        handle = decoder.register_forward_hook(record, with_kwargs=True)
        scores = model.label_log_likelihoods(features, prefilled=read)
        free = model.generate(features, constrained=False, prefilled=read)
        trie = model.generate(features, constrained=True, prefilled=read)
        handle.remove()
        torch.testing.assert_close(scores, model.label_log_likelihoods(features), rtol=0, atol=0)
    assert free.texts == model.generate(features, constrained=False).texts
    assert trie.texts == model.generate(features, constrained=True).texts
    assert free.texts != trie.texts  # the two decodings are not one computation
    assert max(lengths) < read.attention.shape[1]  # no pass re-read the window
    for (k, v), (k0, v0) in zip(read.kv, before, strict=True):
        assert torch.equal(k, k0) and torch.equal(v, v0)


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
