"""Label text: class names as the LM reads them (targets, label trie, decoding) — and only there."""

import json
from pathlib import Path

import pytest

from model.checkpoint import load_checkpoint, save_checkpoint
from model.checkpoint_info import META_FILE, read_checkpoint_info
from model.config import ModelConfig
from model.label_text import label_texts, normalise_label
from model.prompt import ClipPrompt, PromptTokens
from runtime.errors import ConfigError
from tests.model.helpers import random_batch, tiny_config, tiny_model, train_steps

THUMOS = ("Background", "BaseballPitch", "CliffDiving", "CleanAndJerk", "open drawer", "Open")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("BaseballPitch", "baseball pitch"),
        ("CliffDiving", "cliff diving"),
        ("CleanAndJerk", "clean and jerk"),
        ("Background", "background"),
        ("Shotput", "shotput"),
        ("open drawer", "open drawer"),  # already words: unchanged
        ("Pick up cup", "pick up cup"),
        ("take_plate", "take plate"),
        ("TVSeries", "tv series"),
        ("Open  Drawer", "open drawer"),
    ],
)
def test_normalised_label_text(name: str, text: str) -> None:
    assert normalise_label(name) == text


def test_raw_style_keeps_the_names() -> None:
    assert label_texts(THUMOS, "raw") == THUMOS
    assert label_texts(THUMOS, "normalised") == (
        "background",
        "baseball pitch",
        "cliff diving",
        "clean and jerk",
        "open drawer",
        "open",
    )
    with pytest.raises(ConfigError, match="label_text must be one of"):
        label_texts(THUMOS, "lower")


def test_names_that_read_the_same_are_refused() -> None:
    with pytest.raises(
        ConfigError, match="class names 'OpenDrawer' and 'open drawer' both read 'open drawer'"
    ):
        label_texts(("Background", "OpenDrawer", "open drawer"), "normalised")
    with pytest.raises(ConfigError, match="'Jump' and 'jump' both read 'jump'"):
        tiny_config(class_names=("Background", "Jump", "jump"))
    with pytest.raises(ConfigError, match="task names 'MakeTea' and 'make tea'"):
        tiny_config(
            class_names=("boil water", "add tea"),
            background_index=None,
            task_names=("MakeTea", "make tea"),
            clip_frames=8,
        )
    with pytest.raises(ConfigError, match="no text left"):
        label_texts(("a", "_"), "normalised")
    # Raw text tells them apart: allowed.
    assert tiny_config(class_names=("Background", "Jump", "jump"), label_text="raw")


def test_new_configs_are_normalised_saved_ones_without_the_key_raw() -> None:
    config = tiny_config(class_names=THUMOS)
    assert config.label_text == "normalised"
    assert ModelConfig.from_dict(config.to_dict()) == config
    old = config.to_dict()
    del old["label_text"]  # a checkpoint saved before label_text existed
    assert ModelConfig.from_dict(old).label_text == "raw"
    with pytest.raises(ConfigError, match="label_text must be one of"):
        tiny_config(label_text="lower")


def test_prompt_tokens_use_the_label_text_and_class_names_stay_raw() -> None:
    model = tiny_model(class_names=THUMOS)
    ids = model.tokenizer

    def tokens(text: str) -> tuple[int, ...]:
        return tuple(ids(text, add_special_tokens=False)["input_ids"])

    assert model.config.class_names == THUMOS  # reports, manifests, service: raw
    assert model.prompt.labels[1] == tokens(" baseball pitch")
    assert model.prompt.previous[3] == tokens(", clean and jerk")
    raw = PromptTokens.build(model.tokenizer, tiny_config(class_names=THUMOS, label_text="raw"))
    assert raw.labels[1] == tokens(" BaseballPitch")
    clip = ClipPrompt.build(
        model.tokenizer,
        tiny_config(
            class_names=("BoilWater", "AddTea"),
            background_index=None,
            task_names=("MakeTea", "MakeCoffee"),
            clip_frames=8,
        ),
    )
    assert clip.steps[0] == tokens(" boil water")
    assert clip.tasks[1] == tokens(" make coffee")
    assert clip.task_suffix[0] == tokens(", make tea")


def test_decoded_text_maps_to_classes_by_label_text() -> None:
    model = tiny_model("generative", class_names=THUMOS)

    def decode(*texts: str):
        rows = [model.tokenizer.encode(t, add_special_tokens=False) for t in texts]
        return model._to_classes(rows, THUMOS)

    out = decode(" baseball pitch", " clean and jerk", " cliff divng")
    assert out.indices == [1, 3, 2] and out.exact == [True, True, False]
    # Under the raw style the raw names are the text.
    raw = tiny_model("generative", class_names=THUMOS, label_text="raw")
    rows = [raw.tokenizer.encode(" CliffDiving", add_special_tokens=False)]
    assert raw._to_classes(rows, THUMOS).exact == [True]


def test_constrained_decoding_emits_label_text() -> None:
    model = tiny_model("generative", seed=3, class_names=THUMOS)
    features, _, _ = random_batch(batch=6, steps=4, seed=5)
    out = model.generate(features, constrained=True)
    texts = label_texts(THUMOS, "normalised")
    assert all(out.exact) and [texts.index(t) for t in out.texts] == out.indices


@pytest.mark.integration
def test_checkpoint_saved_before_label_text_loads_raw_and_decodes_as_before(
    tmp_path: Path,
) -> None:
    # A model trained on raw names, saved; its checkpoint.json stripped of label_text as
    # older versions wrote it. It must load raw and decode exactly as before.
    model = tiny_model("generative", class_names=THUMOS, label_text="raw")
    train_steps(model, steps=5)
    save_checkpoint(model, tmp_path / "ckpt")
    meta = json.loads((tmp_path / "ckpt" / META_FILE).read_text())
    assert meta["model"]["label_text"] == "raw"
    del meta["model"]["label_text"]
    (tmp_path / "ckpt" / META_FILE).write_text(json.dumps(meta))
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert loaded.config.label_text == "raw"
    assert loaded.prompt == model.prompt
    features, _, _ = random_batch(batch=3, steps=4, seed=2)
    for constrained in (True, False):
        before = model.generate(features, constrained=constrained)
        after = loaded.generate(features, constrained=constrained)
        assert (after.texts, after.indices) == (before.texts, before.indices)
    # A new checkpoint records its style.
    save_checkpoint(tiny_model(class_names=THUMOS), tmp_path / "new")
    assert read_checkpoint_info(tmp_path / "new").config.label_text == "normalised"
    assert load_checkpoint(tmp_path / "new").prompt.labels[1] != model.prompt.labels[1]
