"""The clip model: two heads on one [CLS], per-question prompts, GAD targets, decoding."""

from __future__ import annotations

import pytest
import torch

from model.backbone import build_tiny_backbone
from model.checkpoint import load_checkpoint, save_checkpoint
from model.checkpoint_info import describe_checkpoint, read_checkpoint_info
from model.clip import NEXT, STEP, TASK, ClipClassifier
from model.config import LoraSettings, ModelConfig, TargetRules
from model.label_text import label_texts
from runtime.errors import ConfigError
from tests.model.helpers import FEATURE_DIM

pytestmark = pytest.mark.integration  # trains tiny clip models: seconds each

STEPS = ("boil water", "add tea", "pour water", "stir drink", "grind beans")
TASKS = ("make tea", "make coffee", "make salad")


def clip_config(kind: str = "gad", **overrides: object) -> ModelConfig:
    values: dict[str, object] = {
        "backbone": "tiny",
        "kind": kind,
        "feature_dim": FEATURE_DIM,
        "class_names": STEPS,
        "background_index": None,
        "task_names": TASKS,
        "clip_frames": 6,
        "lora": LoraSettings(rank=8, alpha=16, dropout=0.0),
    }
    values.update(overrides)
    return ModelConfig(**values)  # type: ignore[arg-type]


def clip_model(kind: str = "gad", seed: int = 0, **overrides: object) -> ClipClassifier:
    torch.manual_seed(seed)
    return ClipClassifier(clip_config(kind, **overrides), build_tiny_backbone())


def clip_batch(seed: int = 0):
    """Six clips, two per question; the answer is readable from the features."""
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(6, 5, FEATURE_DIM, generator=gen) * 0.1
    questions = torch.tensor([STEP, TASK, NEXT, STEP, TASK, NEXT])
    labels = torch.tensor([0, 1, 2, 3, 2, 4])
    goals = torch.tensor([0, 1, 0, 1, 2, 1])
    features[torch.arange(6), :, labels] += 2.0
    return features, None, labels, questions, goals


def train(model: ClipClassifier, steps: int) -> list[float]:
    batch = clip_batch()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(*batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_config_checks_the_clip_fields() -> None:
    assert clip_config().is_clip and not clip_config(task_names=(), clip_frames=0).is_clip
    with pytest.raises(ConfigError, match="clip_frames > 0"):
        clip_config(clip_frames=0)
    with pytest.raises(ConfigError, match="no background"):
        clip_config(background_index=0)
    with pytest.raises(ConfigError, match="task name"):
        clip_config(task_names=("make tea", "make\ncoffee"))
    with pytest.raises(ConfigError, match="at least 2 tasks"):
        clip_config(task_names=("make tea",))
    with pytest.raises(ConfigError, match="task_names is empty"):
        clip_config(task_names=())
    restored = ModelConfig.from_dict(clip_config().to_dict())
    assert restored == clip_config()


def test_two_heads_on_one_cls() -> None:
    model = clip_model()
    features, mask, *_ = clip_batch()
    steps, tasks = model.question_logits(features, mask, torch.full((6,), STEP))
    assert steps.shape == (6, len(STEPS)) and tasks.shape == (6, len(TASKS))
    # The heads read the same [CLS] state.
    hidden = model._cls_hidden(features, mask, model._question_prefix(torch.full((6,), STEP)))
    torch.testing.assert_close(steps, model.head(hidden))
    torch.testing.assert_close(tasks, model.task_head(hidden))


def test_questions_change_the_cls_state() -> None:
    model = clip_model()
    features, mask, *_ = clip_batch()
    step_q, _ = model.question_logits(features, mask, torch.full((6,), STEP))
    next_q, _ = model.question_logits(features, mask, torch.full((6,), NEXT))
    assert not torch.allclose(step_q, next_q)


def test_clip_logits_is_the_three_questions_batched() -> None:
    model = clip_model()
    train(model, 3)
    model.eval()
    features, mask, *_ = clip_batch()
    with torch.no_grad():
        steps, tasks, nexts = model.clip_logits(features)
        for question, expected, pick in ((STEP, steps, 0), (TASK, tasks, 1), (NEXT, nexts, 0)):
            got = model.question_logits(features, mask, torch.full((6,), question))[pick]
            torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_padding_does_not_change_the_answers() -> None:
    model = clip_model()
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


def test_gad_targets_follow_the_question() -> None:
    model = clip_model()
    prompt = model.clip_prompt
    tokenizer = model.tokenizer
    step = tokenizer.decode(prompt.answer(STEP, 2, 1))
    task = tokenizer.decode(prompt.answer(TASK, 1, 1))
    nxt = tokenizer.decode(prompt.answer(NEXT, 3, 0))
    # The authors' text (the default): sentences, the task after the step's period.
    assert step.startswith(" Pour water. Make coffee.")
    assert task.startswith(" Make coffee.") and "," not in task
    assert nxt.startswith(" Stir drink. Make tea.")
    ours = clip_model(label_text="normalised").clip_prompt
    assert tokenizer.decode(ours.answer(STEP, 2, 1)).startswith(" pour water, make coffee")


@pytest.mark.parametrize("kind", ["generative", "discriminative", "gad"])
def test_each_kind_learns_the_three_questions(kind: str) -> None:
    model = clip_model(kind)
    # The authors' answers are sentences ("Boil water." beside the tasks "Make tea."): the
    # byte-level tiny LM needs more steps to tell steps from tasks when it decodes.
    losses = train(model, 160 if kind == "generative" else 80)
    assert losses[-1] < 0.2 * losses[0], losses
    model.eval()
    features, _mask, labels, questions, _ = clip_batch()
    for question in (STEP, TASK, NEXT):
        rows = questions == question
        if kind == "generative":
            got = model.generate_clip(features[rows], None, question).indices
            scores = model.question_log_likelihoods(features[rows], None, question)
            assert scores.argmax(-1).tolist() == labels[rows].tolist(), (kind, question)
        else:
            steps, tasks = model.question_logits(features[rows], None, questions[rows])
            got = (tasks if question == TASK else steps).argmax(-1).tolist()
        assert got == labels[rows].tolist(), (kind, question)


def test_gad_loss_is_heads_plus_weighted_lm() -> None:
    model = clip_model("gad", lm_weight=0.5)
    with torch.no_grad():
        out = model(*clip_batch())
    torch.testing.assert_close(out.loss, out.cls_loss + 0.5 * out.lm_loss)
    discriminative = clip_model("discriminative")
    with torch.no_grad():
        out = discriminative(*clip_batch())
    assert out.lm_loss is None and out.loss == out.cls_loss


def test_labels_are_checked_against_their_head() -> None:
    model = clip_model()
    features, mask, labels, questions, goals = clip_batch()
    bad = labels.clone()
    bad[1] = len(TASKS)  # a task question with a step-sized label
    with pytest.raises(ConfigError, match="out of range"):
        model(features, mask, bad, questions, goals)
    with pytest.raises(ConfigError, match="questions must lie"):
        model.question_logits(features, mask, torch.full((6,), 3))


def test_constrained_decoding_yields_names_of_the_asked_kind() -> None:
    # Constrained is now asked for: free decoding is the default (the paper's baseline).
    model = clip_model("generative", seed=4)
    features, *_ = clip_batch(seed=9)
    steps = model.generate_clip(features, None, STEP, constrained=True)
    tasks = model.generate_clip(features, None, TASK, constrained=True)
    step_texts = label_texts(STEPS, model.config.label_text, "step")
    task_texts = label_texts(TASKS, model.config.label_text, "task")
    assert all(text in step_texts for text in steps.texts) and all(steps.exact)
    assert all(text in task_texts for text in tasks.texts) and all(tasks.exact)


def _edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


@pytest.mark.parametrize("question", [STEP, TASK, NEXT])
def test_free_decoding_is_the_default_and_maps_off_label_text_to_the_nearest_name(
    question: int,
) -> None:
    model = clip_model("generative", seed=4)  # untrained: free decoding emits garbage
    features, *_ = clip_batch(seed=9)
    out = model.generate_clip(features, None, question)
    assert out.texts == model.generate_clip(features, None, question, constrained=False).texts
    assert not all(out.exact), out.texts  # nothing constrained it to the names
    names = TASKS if question == TASK else STEPS  # the asked kind's names only
    names = label_texts(names, model.config.label_text, "task" if question == TASK else "step")
    for text, index, exact in zip(out.texts, out.indices, out.exact, strict=True):
        distances = [_edit_distance(text, name) for name in names]
        assert index == distances.index(min(distances)), (text, distances)
        assert exact == (text in names)


def test_generative_learns_the_answer_alone_gad_the_answer_and_task() -> None:
    # The authors' generative COIN classifier learns the label text only; GAD adds the task.
    generative, gad = clip_model("generative"), clip_model("gad")
    p = generative.clip_prompt
    assert generative._answer(STEP, 2, 1) == [*p.steps[2], p.eos]
    assert generative._answer(NEXT, 3, 0) == [*p.steps[3], p.eos]
    assert generative._answer(TASK, 1, 2) == [*p.tasks[1], p.eos]
    assert gad._answer(STEP, 2, 1) == [*p.steps[2], *p.task_suffix[1], p.eos]
    assert gad._answer(TASK, 1, 2) == [*p.tasks[1], p.eos]


@pytest.mark.parametrize("question", [STEP, TASK, NEXT])
def test_question_log_likelihoods_are_the_lm_loss_of_each_answer(question: int) -> None:
    # Computed another way: the training forward's LM loss (mean over the answer's
    # tokens) on " {name}" <eos>, one clip and one name at a time, with no KV cache (the
    # LM loss on the answer alone here, not on "\nAssistant:").
    model = clip_model("generative", targets=TargetRules(lm_on_prompt=False))
    train(model, 5)  # non-zero LoRA: a model that prefers some names
    model.eval()
    gen = torch.Generator().manual_seed(2)
    clips = [torch.randn(1, n, FEATURE_DIM, generator=gen) for n in (3, 5)]
    batch = torch.zeros(2, 5, FEATURE_DIM)
    batch[0, 2:], batch[1] = clips[0][0], clips[1][0]
    mask = torch.ones(2, 5, dtype=torch.long)
    mask[0, :2] = 0  # left padding
    names = TASKS if question == TASK else STEPS
    tokens = model.clip_prompt.tasks if question == TASK else model.clip_prompt.steps
    with torch.no_grad():
        scores = model.question_log_likelihoods(batch, mask, question)
        chunked = model.question_log_likelihoods(batch, mask, question, rows_per_pass=1)
        expected = torch.zeros(2, len(names))
        for b, clip in enumerate(clips):
            for c in range(len(names)):
                out = model(clip, None, torch.tensor([c]), torch.tensor([question]),
                            torch.tensor([0]))  # fmt: skip
                assert out.lm_loss is not None
                expected[b, c] = -out.lm_loss * (len(tokens[c]) + 1)
        # A hand-picked name, by its own teacher-forced pass: " {name}" <eos>.
        hand = len(names) - 1
        ids = [*tokens[hand], model.clip_prompt.eos]
        _, lm_loss = model._generative_pass(
            clips[1], None, (torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.bool)),
            model._question_prefix(torch.tensor([question])),
        )  # fmt: skip
    assert scores.shape == (2, len(names))
    torch.testing.assert_close(scores, expected, rtol=0, atol=1e-4)
    torch.testing.assert_close(scores[1, hand], -lm_loss * len(ids), rtol=0, atol=1e-4)
    torch.testing.assert_close(chunked, scores, rtol=0, atol=1e-5)
    assert torch.all(scores < 0)
    probabilities = torch.softmax(scores, -1)  # the generative clip scores
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(2))


def test_question_log_likelihoods_depend_on_the_question() -> None:
    model = clip_model("generative")
    train(model, 5)
    model.eval()
    features, *_ = clip_batch()
    with torch.no_grad():
        step = model.question_log_likelihoods(features, None, STEP)
        nxt = model.question_log_likelihoods(features, None, NEXT)
    assert not torch.allclose(step, nxt)  # the same names, asked after another prefix
    with pytest.raises(ConfigError, match="question must be"):
        model.question_log_likelihoods(features, None, 3)


def test_checkpoint_round_trip(tmp_path) -> None:
    model = clip_model()
    train(model, 3)
    model.eval()
    save_checkpoint(model, tmp_path / "ckpt", extra={"data": {"fps": 2.0}})
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert isinstance(loaded, ClipClassifier) and loaded.config == model.config
    rows = dict(describe_checkpoint(read_checkpoint_info(tmp_path / "ckpt")))
    assert (
        rows["tasks"] == "3: make tea, make coffee, make salad" and "window" not in rows["features"]
    )
    features, *_ = clip_batch()
    with torch.no_grad():
        for a, b in zip(model.clip_logits(features), loaded.clip_logits(features), strict=True):
            torch.testing.assert_close(a, b)


def test_the_per_frame_head_call_is_refused() -> None:
    with pytest.raises(ConfigError, match="clip_logits"):
        clip_model().class_logits(torch.zeros(1, 3, FEATURE_DIM))
