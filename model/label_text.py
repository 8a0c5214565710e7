"""The text a class name becomes in the LM target and in decoding — nowhere else.

Styles (model config `label_text`):

  authors           what the authors' code makes of each dataset's names (the default
                    for new models). Per-frame classes (THUMOS, TVSeries, EK100,
                    CrossTask, Ego4D-GoalStep): every capital becomes a space and its
                    lower case ("BaseballPitch" → "baseball pitch"; "Pick something up" →
                    "pick something up"; "take wrap:plastic" unchanged), and the
                    background class reads "background" (CrossTask's "BackGround"
                    included). COIN steps: the label with its first letter capitalised,
                    the rest lower case, and a period ("remove the old battery" →
                    "Remove the old battery."; the two labels with a comma reworded as
                    theirs are). COIN tasks: CamelCase split into words with the acronyms
                    TV, CD, SIM, NBA, SSD, RJ45 restored, then capitalised the same way —
                    which lower-cases the acronyms again ("ReplaceSIMCard" → "Replace sim
                    card."): their code restores them and `str.capitalize()` undoes it.
  authors-acronyms  the same, with the acronyms of COIN tasks kept ("Replace SIM card."):
                    what their acronym table means to do.
  normalised        ours before issue 29: CamelCase split at word boundaries ("TVSeries"
                    → "tv series"), underscores as spaces, lower case, no period.
  raw               the names unchanged (checkpoints saved before the style was recorded).

Reports, manifests and the service keep the raw class names; only the prompt's answer
tokens, the label trie and the edit-distance mapping of decoded text read these.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal, get_args

from runtime.errors import ConfigError

LabelTextStyle = Literal["authors", "authors-acronyms", "normalised", "raw"]
LABEL_TEXT_STYLES: tuple[str, ...] = get_args(LabelTextStyle)
AUTHORS_STYLES = ("authors", "authors-acronyms")
# What a name is: a per-frame class, a clip model's step, or its task.
NameRole = Literal["class", "step", "task"]

# A word boundary inside CamelCase: "lowerUpper" ("BaseballPitch"), and the end of an
# acronym before a capitalised word ("TVSeries" → "TV Series").
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
# The background names the authors' per-frame datasets use (THUMOS, TVSeries, EK100:
# "Background"; CrossTask: "BackGround"; Ego4D-GoalStep: "background").
_BACKGROUNDS = ("Background", "BackGround")
# The two COIN step labels the authors reword (the only ones with a comma).
_COIN_STEPS = {
    "process (crop, fold) paper": "crop and fold paper",
    "try to press gun head, spray residual old grease": (
        "try to press gun head to spray residual old grease"
    ),
}
# COIN task acronyms, as the authors restore them after splitting CamelCase.
_COIN_ACRONYMS = (
    (" t v", " TV"),
    (" c d", " CD"),
    ("s i m", "SIM"),
    ("n b a", "NBA"),
    ("s s d", "SSD"),
    ("r j45", "RJ45"),
)


def normalise_label(name: str) -> str:
    """Ours (`normalised`): CamelCase split into words, underscores as spaces, runs of
    spaces collapsed, lower-cased ("BaseballPitch" → "baseball pitch")."""
    return " ".join(_CAMEL.sub(" ", name).replace("_", " ").split()).lower()


def _split_capitals(name: str) -> str:
    # Each capital letter becomes a space and its lower case, then the ends are trimmed.
    return "".join(" " + c.lower() if c.isupper() else c for c in name).strip()


def authors_class_label(name: str) -> str:
    """A per-frame class as the authors' OAD code spells it ("BackGround" → "background",
    "BaseballPitch" → "baseball pitch", "take_pan" unchanged)."""
    return "background" if name in _BACKGROUNDS else _split_capitals(name)


def _sentence(text: str, *, keep_case: bool = False) -> str:
    # `str.capitalize()` (first letter up, the rest down) as the authors' targets; with
    # `keep_case` only the first letter changes.
    body = text[:1].upper() + text[1:] if keep_case else text.capitalize()
    return body + "."


def authors_step_label(name: str) -> str:
    """A COIN step as the authors' targets read it ("Remove the old battery.")."""
    return _sentence(_COIN_STEPS.get(name, name))


def authors_task_label(name: str, *, acronyms: bool = False) -> str:
    """A COIN task as the authors' targets read it ("MakeTea" → "Make tea."; with
    `acronyms` the restored TV, CD, SIM, NBA, SSD, RJ45 stay upper case)."""
    text = "".join(" " + c.lower() if c.isupper() else c for c in name)
    for spelt, acronym in _COIN_ACRONYMS:
        text = text.replace(spelt, acronym)
    return _sentence(text.strip(), keep_case=acronyms)


def label_text(name: str, style: str, role: str = "class") -> str:
    """The LM text of one name under `style` (`role`: class, step or task)."""
    if style == "raw":
        return name
    if style == "normalised":
        return normalise_label(name)
    if style in AUTHORS_STYLES:
        if role == "step":
            return authors_step_label(name)
        if role == "task":
            return authors_task_label(name, acronyms=style == "authors-acronyms")
        return authors_class_label(name)
    raise ConfigError(f"label_text must be one of {LABEL_TEXT_STYLES}, got {style!r}")


def label_texts(names: Iterable[str], style: str, what: str = "class") -> tuple[str, ...]:
    """The LM text of each name under `style`; refuses two names that read the same.
    `what` is the names' role: "class" (per-frame), "step" or "task" (clip model)."""
    if style not in LABEL_TEXT_STYLES:
        raise ConfigError(f"label_text must be one of {LABEL_TEXT_STYLES}, got {style!r}")
    names = tuple(names)
    texts = tuple(label_text(n, style, what) for n in names)
    seen: dict[str, str] = {}
    for name, text in zip(names, texts, strict=True):
        if not text.strip(" ."):
            raise ConfigError(f"{what} name {name!r} has no text left once normalised")
        if text in seen:
            raise ConfigError(
                f"{what} names {seen[text]!r} and {name!r} both read {text!r} as label text "
                f"({style}): the LM could not tell them apart; rename one of them"
            )
        seen[text] = name
    return texts
