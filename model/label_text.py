"""The text a class name becomes in the LM target and in decoding — nowhere else.

The authors' generative targets spell THUMOS's CamelCase class names as lower-case words
("BaseballPitch" → "baseball pitch", "Background" → "background"). `normalised` does the
same for every name; `raw` feeds the names unchanged (checkpoints saved before the style
was recorded). Reports, manifests and the service keep the raw class names; only the
prompt's answer tokens, the label trie and the edit-distance mapping of decoded text read
these.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal, get_args

from runtime.errors import ConfigError

LabelTextStyle = Literal["raw", "normalised"]
LABEL_TEXT_STYLES: tuple[str, ...] = get_args(LabelTextStyle)

# A word boundary inside CamelCase: "lowerUpper" ("BaseballPitch"), and the end of an
# acronym before a capitalised word ("TVSeries" → "TV Series").
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def normalise_label(name: str) -> str:
    """A class name as the LM reads it: CamelCase split into words, underscores as spaces,
    runs of spaces collapsed, lower-cased ("BaseballPitch" → "baseball pitch"). Names
    already in words only lose their capitals ("open drawer" stays as it is)."""
    return " ".join(_CAMEL.sub(" ", name).replace("_", " ").split()).lower()


def label_texts(names: Iterable[str], style: str, what: str = "class") -> tuple[str, ...]:
    """The LM text of each class name under `style`; refuses two names that read the same."""
    if style not in LABEL_TEXT_STYLES:
        raise ConfigError(f"label_text must be one of {LABEL_TEXT_STYLES}, got {style!r}")
    names = tuple(names)
    texts = names if style == "raw" else tuple(normalise_label(n) for n in names)
    seen: dict[str, str] = {}
    for name, text in zip(names, texts, strict=True):
        if not text:
            raise ConfigError(f"{what} name {name!r} has no text left once normalised")
        if text in seen:
            raise ConfigError(
                f"{what} names {seen[text]!r} and {name!r} both read {text!r} as label text "
                f"({style}): the LM could not tell them apart; rename one of them"
            )
        seen[text] = name
    return texts
