"""The prompt and LM-target details, each pinned on a hand-made sequence against the
authors' code (OAD/oad_gad.py: chat_template, get_learn_ranges, data_collator,
`_init_dataset`; Offline/gad.py for COIN), and `TargetRules.ours()` — the layout before —
kept for saved checkpoints and as the option."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from model.backbone import build_tiny_backbone, resolve_backbone
from model.clip import ClipClassifier
from model.config import DEFAULT_QUESTION, ModelConfig, TargetRules
from model.gad import GADClassifier
from model.prompt import PromptTokens
from tests.model.helpers import FEATURE_DIM, tiny_config, tiny_model
from training.dataset import previous_action, previous_actions

BG, A, B, C = 0, 1, 2, 3
OURS = TargetRules.ours()


def _ids(model: GADClassifier, text: str) -> list[int]:
    return list(model.tokenizer(text, add_special_tokens=False)["input_ids"])


# --- 1. the previous action: repeats dropped keeping the first occurrence -------------


def test_previous_action_keeps_first_occurrences_as_the_authors() -> None:
    # [A, B, A, current]: theirs drops the second A (first occurrence kept) and takes the
    # last of [A, B]: B. The most recent other action (ours, `last`) is A.
    labels = np.array([A, B, A, C])
    assert previous_action(labels, 3, short=4, background=BG, ignore=None) == B
    assert previous_action(labels, 3, short=4, background=BG, ignore=None, rule="last") == A
    # With background between them, and runs: the same.
    runs = np.array([A, A, BG, B, B, BG, A, A, C])
    assert previous_action(runs, 8, short=9, background=BG, ignore=None) == B
    assert previous_action(runs, 8, short=9, background=BG, ignore=None, rule="last") == A
    # The current action is never its own previous action, wherever it occurs: [A, B, A, A].
    assert previous_action(np.array([A, B, A, A]), 3, short=4, background=BG, ignore=None) == B
    # Only the short window counts: frames t-short+1 .. t.
    assert previous_action(labels, 3, short=3, background=BG, ignore=None) == A  # [B, A, C]
    # Every frame: their window is the `short` frames ending at it.
    assert previous_actions(labels, short=4, background=BG, ignore=None).tolist() == [
        -1, A, B, B,
    ]  # fmt: skip


# --- 2. the prompt: a newline between question and frames ----------------------------


def test_newline_between_question_and_frames() -> None:
    model = tiny_model()
    bos = [model.tokenizer.bos_token_id]
    assert list(model.prompt.prefix) == bos + _ids(model, DEFAULT_QUESTION + "\n")
    ours = PromptTokens.build(model.tokenizer, tiny_config(targets=OURS))
    assert list(ours.prefix) == bos + _ids(model, DEFAULT_QUESTION)
    # The clip model's questions too.
    clip = ClipClassifier(_clip_config(), build_tiny_backbone())
    assert all(q[-1] == _ids(model, "\n")[0] for q in clip.clip_prompt.questions)


def test_newline_is_tokenized_with_the_question_as_their_template(gad_cache_dir: Path) -> None:
    # Their text is "<|begin_of_text|>What is the action in the last frame?\n<v><v>...": the
    # <v> placeholders are special tokens, so "?\n" is tokenized with the question.
    backbone = resolve_backbone("tiny-llama3", cache_dir=gad_cache_dir)
    model = GADClassifier(tiny_config(backbone="tiny-llama3"), backbone)
    tok = model.tokenizer
    theirs = tok(tok.bos_token + DEFAULT_QUESTION + "\n", add_special_tokens=False)
    assert list(model.prompt.prefix) == theirs["input_ids"]
    assert tok.decode(model.prompt.prefix[-1:]).endswith("\n")


# --- 3. the background answer has no <eos>; every other answer has one --------------


def test_background_answer_without_eos() -> None:
    model = tiny_model()
    prompt = model.prompt
    eos = prompt.eos
    # The silence turn: "\nAssistant:" + " background", nothing after it.
    assert prompt.answer(BG) == _ids(model, " background")
    # <eos> once a previous action follows: " background, {previous}<eos>".
    assert prompt.answer(BG, A) == [*_ids(model, " background, open drawer"), eos]
    assert prompt.answer(A) == [*_ids(model, " open drawer"), eos]
    assert prompt.answer(B, A) == [*_ids(model, " close drawer, open drawer"), eos]
    # The generative classifier's likelihood scores the same answers.
    assert prompt.scored(BG) == _ids(model, " background")
    assert prompt.scored(A)[-1] == eos
    # Free decoding stops once " background" is read.
    assert model.trie.bare == {tuple(_ids(model, " background"))}
    # Ours (the option, and saved checkpoints): <eos> after every answer.
    ours = tiny_model(targets=replace(TargetRules(), background_eos=True))
    assert ours.prompt.answer(BG) == [*_ids(model, " background"), eos]
    assert ours.trie.bare == frozenset()


# --- 4. the LM loss covers "\nAssistant:" (the [CLS] position predicts "\n") ----------


def _lm_call(monkeypatch: pytest.MonkeyPatch, run) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, targets) of the LM cross-entropy `run()` computes (the one call with
    ignore_index: the class CE has none)."""
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    original = F.cross_entropy

    def spy(logits, targets, *args, **kwargs):
        if kwargs.get("ignore_index") == -100:
            calls.append((logits.detach(), targets.detach()))
        return original(logits, targets, *args, **kwargs)

    monkeypatch.setattr(F, "cross_entropy", spy)
    run()
    monkeypatch.setattr(F, "cross_entropy", original)
    assert len(calls) == 1
    return calls[0]


def test_lm_loss_covers_the_assistant_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_model().eval()
    features = torch.randn(1, 3, FEATURE_DIM)
    labels, previous = torch.tensor([B]), torch.tensor([A])
    logits, targets = _lm_call(monkeypatch, lambda: model(features, None, labels, previous))
    assistant = _ids(model, "\nAssistant:")
    answer = [*_ids(model, " close drawer, open drawer"), model.prompt.eos]
    assert targets.tolist() == assistant + answer  # "\n" first
    # The first target, "\n", is predicted by the [CLS] state.
    cls = model._cls_hidden(features, None)
    torch.testing.assert_close(logits[0], model.lm_logits(cls[0]).float(), atol=1e-4, rtol=1e-4)
    # Background: the targets end with " background" (no <eos>).
    _, targets = _lm_call(monkeypatch, lambda: model(features, None, torch.tensor([BG])))
    assert targets.tolist() == assistant + _ids(model, " background")
    # Ours: the answer alone.
    model.config = replace(model.config, targets=replace(TargetRules(), lm_on_prompt=False))
    _, targets = _lm_call(monkeypatch, lambda: model(features, None, labels, previous))
    assert targets.tolist() == answer


def test_generative_lm_loss_starts_at_the_last_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    # No [CLS]: the last frame's state predicts "\n" (their generative template alike).
    model = tiny_model("generative").eval()
    features = torch.randn(1, 3, FEATURE_DIM)
    logits, targets = _lm_call(monkeypatch, lambda: model(features, None, torch.tensor([A])))
    assert targets.tolist() == [*_ids(model, "\nAssistant: open drawer"), model.prompt.eos]
    embeds, attention = model._sequence(features, None, with_cls=False)
    hidden = model._decoder(embeds, attention, model._positions(attention)).last_hidden_state
    last_frame = model.lm_logits(hidden[0, -1]).float()
    torch.testing.assert_close(logits[0], last_frame, atol=1e-4, rtol=1e-4)


# --- 5. COIN: the separators between rows are LM targets too ------------------------


def _clip_config(**overrides: object) -> ModelConfig:
    values: dict[str, object] = {
        "class_names": ("boil water", "add tea", "pour tea"),
        "background_index": None,
        "task_names": ("MakeTea", "ReplaceSIMCard"),
        "clip_frames": 8,
        "tokens_per_frame": 2,
    }
    values.update(overrides)
    return tiny_config(**values)


def test_clip_lm_loss_covers_the_row_separators(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = ClipClassifier(_clip_config(), build_tiny_backbone()).eval()
    comma = _ids(model, ",")
    assert model.clip_prompt.separator == tuple(comma)  # theirs: "," between frames
    features = torch.randn(1, 4, FEATURE_DIM)
    mask = torch.tensor([[0, 1, 1, 1]])  # one padded row in front: 3 real rows
    step, goal = torch.tensor([1]), torch.tensor([0])

    def run() -> None:
        model(features, mask, step, torch.tensor([0]), goal)

    logits, targets = _lm_call(monkeypatch, run)
    answer = [*_ids(model, "\nAssistant: Add tea. Make tea."), model.clip_prompt.eos]
    # Real rows 1, 2, 3: the separators after rows 1 and 2 (none after the last, none
    # after the padded row), then the assistant prompt and the answer.
    assert targets.tolist() == comma * 2 + answer
    # Each separator is predicted by the last token of its row.
    embeds, attention = model._sequence(
        features, mask, with_cls=True, prefix=model._question_prefix(torch.tensor([0]))
    )
    hidden = model._decoder(embeds, attention, model._positions(attention)).last_hidden_state
    start = model.question_ids.shape[1]
    row_last = [start + r * 3 + 1 for r in (1, 2)]  # k = 2 tokens + 1 separator per row
    expected = model.lm_logits(hidden[0, row_last]).float()
    torch.testing.assert_close(logits[:2], expected, atol=1e-4, rtol=1e-4)
    # Ours: no separator targets, answer only.
    model.config = replace(model.config, targets=OURS)
    _, targets = _lm_call(monkeypatch, run)
    assert targets.tolist() == [*_ids(model, " Add tea. Make tea."), model.clip_prompt.eos]


def test_clip_decoding_reads_the_authors_step_text() -> None:
    torch.manual_seed(0)
    model = ClipClassifier(_clip_config(), build_tiny_backbone()).eval()
    rows = [_ids(model, text) for text in (" Add tea. Make tea.", " Pour tea.", " Boil watr.")]
    out = model._to_classes(rows, model.config.class_names, "step", model.clip_prompt.cut_step)
    assert out.indices == [1, 2, 0] and out.exact == [True, True, False]
    assert out.texts[0] == "Add tea."


# --- 6. saved configs keep the layout they were trained with -------------------------


def test_a_config_saved_before_the_rules_reads_as_ours() -> None:
    config = tiny_config()
    assert config.targets == TargetRules()
    old = config.to_dict()
    del old["targets"]
    assert ModelConfig.from_dict(old).targets == OURS
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert TargetRules.named("ours") == OURS and TargetRules.named("authors") == TargetRules()


def test_names_with_commas_decode_whole() -> None:
    names = ("background", "cut bacon, sausage, or ham", "cut bacon")
    model = tiny_model("generative", class_names=names)
    rows = [_ids(model, t) for t in (" cut bacon, sausage, or ham", " cut bacon, open")]
    out = model._to_classes(rows, names)
    assert out.indices == [1, 2] and out.exact == [True, True]
    # The generative classifier's answers have no previous action: only <eos> stops them.
    assert model.trie.stops == {model.prompt.eos}
    assert tiny_model(class_names=names).trie.stops > {model.prompt.eos}
