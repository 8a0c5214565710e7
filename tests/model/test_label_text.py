"""Label text: class names as the LM reads them (targets, label trie, decoding) — and only there."""

import json
from pathlib import Path

import pytest

from model.checkpoint import load_checkpoint, save_checkpoint
from model.checkpoint_info import META_FILE, read_checkpoint_info
from model.config import ModelConfig
from model.label_text import label_text, label_texts, normalise_label
from model.prompt import ClipPrompt, PromptTokens
from runtime.errors import ConfigError
from tests.model.helpers import random_batch, tiny_config, tiny_model, train_steps
from tests.training.authors_data import authors_entries

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


def test_new_configs_are_the_authors_saved_ones_without_the_key_raw() -> None:
    config = tiny_config(class_names=THUMOS)
    assert config.label_text == "authors"
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
            label_text="normalised",
        ),
    )
    assert clip.steps[0] == tokens(" boil water")
    assert clip.tasks[1] == tokens(" make coffee")
    assert clip.task_suffix[0] == tokens(", make tea")
    # The authors' COIN text: a sentence per name, the task after the step's period.
    authors = ClipPrompt.build(
        model.tokenizer,
        tiny_config(
            class_names=("boil water", "add tea"),
            background_index=None,
            task_names=("MakeTea", "ReplaceSIMCard"),
            clip_frames=8,
        ),
    )
    assert authors.steps[0] == tokens(" Boil water.")
    assert authors.tasks[1] == tokens(" Replace sim card.")
    assert authors.task_suffix[0] == tokens(" Make tea.")
    assert authors.answer(0, 1, 0) == [*tokens(" Add tea. Make tea."), authors.eos]
    assert authors.cut_step("Add tea. Make tea.") == "Add tea."


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
    texts = label_texts(THUMOS, model.config.label_text)
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
    assert read_checkpoint_info(tmp_path / "new").config.label_text == "authors"
    assert load_checkpoint(tmp_path / "new").prompt.labels[1] != model.prompt.labels[1]


# The authors' text per dataset: their `_clean_step` (OAD/oad_gad.py, one per dataset
# class: THUMOS, CrossTask, EK100, Ego4DGoal) and COIN's (Offline/gad.py), by hand.
@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("BaseballPitch", "baseball pitch"),  # THUMOS
        ("Background", "background"),
        ("Get in/out of car", "get in/out of car"),  # TVSeries: a capital is a space
        ("Fall/trip", "fall/trip"),
        ("take wrap:plastic", "take wrap:plastic"),  # EK100: unchanged
        ("BackGround", "background"),  # CrossTask: theirs, special-cased ("back ground": ours)
        ("pour jello powder", "pour jello powder"),
        ("cut bacon, sausage, or ham", "cut bacon, sausage, or ham"),  # Ego4D: commas kept
        ("take_pan", "take_pan"),  # EK55: underscores kept
        ("TVSeries", "t v series"),  # a capital at a time, as their loop does
    ],
)
def test_authors_class_text(name: str, text: str) -> None:
    assert label_text(name, "authors") == text


@pytest.mark.parametrize(
    ("name", "role", "authors", "acronyms"),
    [
        ("remove the old battery", "step", "Remove the old battery.", "Remove the old battery."),
        ("turn on the TV", "step", "Turn on the tv.", "Turn on the tv."),  # capitalize()
        ("process (crop, fold) paper", "step", "Crop and fold paper.", "Crop and fold paper."),
        (
            "try to press gun head, spray residual old grease",
            "step",
            "Try to press gun head to spray residual old grease.",
            "Try to press gun head to spray residual old grease.",
        ),
        ("MakeTea", "task", "Make tea.", "Make tea."),
        ("ReplaceSIMCard", "task", "Replace sim card.", "Replace SIM card."),
        ("AssembleTVStand", "task", "Assemble tv stand.", "Assemble TV stand."),
        (
            "ReplaceCDDriveWithSSD",
            "task",
            "Replace cd drive with ssd.",
            "Replace CD drive with SSD.",
        ),
        ("WatchNBAGame", "task", "Watch nba game.", "Watch NBA game."),
        ("ReplaceRJ45Plug", "task", "Replace rj45 plug.", "Replace RJ45 plug."),
    ],
)
def test_authors_coin_text(name: str, role: str, authors: str, acronyms: str) -> None:
    # Theirs restores the acronyms and then str.capitalize() lower-cases them again: the
    # default keeps that; authors-acronyms keeps the acronyms.
    assert label_text(name, "authors", role) == authors
    assert label_text(name, "authors-acronyms", role) == acronyms
    assert label_texts([name], "authors", role) == (authors,)


def test_authors_text_of_their_five_datasets() -> None:
    # Every class name of their files reads as theirs; only CrossTask's background
    # differs from ours (normalised), and no two names read the same.
    for name, entry in authors_entries().items():
        names = entry["class_names"]
        theirs = label_texts(names, "authors")
        ours = label_texts(names, "normalised")
        differ = {n: (a, b) for n, a, b in zip(names, theirs, ours, strict=True) if a != b}
        if name == "CrossTask":
            assert differ == {"BackGround": ("background", "back ground")}
        elif name != "EK55":  # EK55's underscores: "take_pan" (theirs) vs "take pan"
            assert differ == {}, name
