"""Typed configuration of a GAD model, validated once and saved in every checkpoint.

Torch-free: the service and `gad info` read it without importing torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args

from model.label_text import LabelTextStyle, label_texts
from runtime.errors import ConfigError
from runtime.windowing import WindowSpec

ClassifierKind = Literal["generative", "discriminative", "gad"]
CLASSIFIER_KINDS: tuple[str, ...] = get_args(ClassifierKind)
ATTENTIONS = ("window", "streaming")
# How the clip model cuts a row into k > 1 tokens (model/connector.py).
FrameTokens = Literal["expand", "split"]
FRAME_TOKENS: tuple[str, ...] = get_args(FrameTokens)

# Llama-family projection names; the paper adapts all seven (docs/design.md, the method).
LLAMA_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
DEFAULT_QUESTION = "What is the action in the last frame?"
# The offline clip model asks one question per task (step, task, next step) of the same
# clip; its [CLS] state feeds the step head for the first and last, the task head for the
# second.
CLIP_QUESTIONS = (
    "What is the step in this clip?",
    "What is the task in this video?",
    "What is the next step after this clip?",
)


@dataclass(frozen=True)
class LoraSettings:
    """LoRA on the backbone. rank=0 freezes the backbone entirely (no adapter)."""

    rank: int = 128
    alpha: int = 256
    dropout: float = 0.05
    target_modules: tuple[str, ...] = LLAMA_LORA_TARGETS
    # None follows the paper: lm_head is adapted for `generative` and `gad`, which train
    # with the LM loss, and left alone for `discriminative`, which never calls it.
    lm_head: bool | None = None

    def __post_init__(self) -> None:
        if self.rank < 0 or self.alpha <= 0:
            raise ConfigError(f"LoRA rank must be >= 0 and alpha > 0, got {self.rank}/{self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"LoRA dropout must be in [0, 1), got {self.dropout}")
        if self.rank and not self.target_modules:
            raise ConfigError("LoRA rank > 0 needs at least one target module")
        object.__setattr__(self, "target_modules", tuple(self.target_modules))

    def adapts_lm_head(self, kind: str) -> bool:
        return self.lm_head if self.lm_head is not None else kind != "discriminative"

    def targets(self, kind: str) -> tuple[str, ...]:
        """The module names LoRA adapts for a classifier of this kind."""
        return self.target_modules + (("lm_head",) if self.adapts_lm_head(kind) else ())


TargetStyle = Literal["authors", "ours"]
TARGET_STYLES: tuple[str, ...] = get_args(TargetStyle)


@dataclass(frozen=True)
class TargetRules:
    """How the prompt and the LM targets are laid out. The defaults are the authors' code
    (arXiv 2603.02546's release, `OAD/oad_gad.py` and `Offline/gad.py`):

    question_newline  "\\n" between the question and the frames (their chat template's
                      text-to-visual connector). Part of the model's input: exported.
    lm_on_prompt      the LM loss also covers "\\nAssistant:" — so the [CLS] position
                      (the last frame for `generative`) learns to predict the newline —
                      and, for the clip model, the separator after each row, predicted by
                      the row's last token (their learn ranges). Training only.
    background_eos    whether the background answer " background" ends with <eos>. Theirs
                      does not (the "silence" turn; <eos> comes only when a previous
                      action follows): default False. True is ours: every answer ends
                      alike, so label log-likelihoods compare answers of one form.

    `ours()` is the layout before issue 29 (no newline, LM loss on the answer only,
    <eos> after every answer): what a saved config without `targets` was trained with.
    """

    question_newline: bool = True
    lm_on_prompt: bool = True
    background_eos: bool = False

    @classmethod
    def ours(cls) -> TargetRules:
        return cls(question_newline=False, lm_on_prompt=False, background_eos=True)

    @classmethod
    def named(cls, style: str) -> TargetRules:
        if style not in TARGET_STYLES:
            raise ConfigError(f"targets must be one of {TARGET_STYLES}, got {style!r}")
        return cls() if style == "authors" else cls.ours()


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a GAD classifier around a backbone.

    `class_names[background_index]` is the background class (None: the data has none).
    `window` (long memory every `long_stride` rows + short window) is what the model is
    trained and served with.
    """

    backbone: str
    kind: ClassifierKind
    feature_dim: int
    class_names: tuple[str, ...]
    background_index: int | None = 0
    question: str = DEFAULT_QUESTION
    lm_weight: float = 1.0
    background_weight: float = 1.0
    lora: LoraSettings = field(default_factory=LoraSettings)
    long_frames: int = 128
    short_frames: int = 32
    long_stride: int = 1
    # Offline clip model (COIN's step / task / next-step tasks): `class_names` are the
    # steps, `task_names` the tasks; a clip is at most `clip_frames` rows, subsampled.
    # Empty `task_names`: the per-frame (online) model.
    task_names: tuple[str, ...] = ()
    clip_frames: int = 0
    clip_questions: tuple[str, ...] = CLIP_QUESTIONS
    # How the clip model reads a row (model/connector.py): `tokens_per_frame` LLM tokens,
    # by `frame_tokens` "expand" (one feature → k tokens) or "split" (the row is k token
    # features concatenated, e.g. an image [CLS] + 3×3 pooled patches as the authors feed
    # COIN), with `frame_separator` text between rows (None: "," — the authors' — when
    # k > 1, else nothing). 1 token and no separator: a config saved before these keys.
    tokens_per_frame: int = 1
    frame_tokens: FrameTokens = "expand"
    frame_separator: str | None = None
    # How class names are spelt in the LM target and in decoding (model/label_text.py):
    # "authors" (their code's text for each dataset) for new models; a saved config
    # without the key is "raw" (see from_dict), as it was trained.
    label_text: LabelTextStyle = "authors"
    # The prompt and LM-target layout (TargetRules: the authors' by default); a saved
    # config without the key has TargetRules.ours(), as it was trained.
    targets: TargetRules = field(default_factory=TargetRules)
    # "window": every frame re-reads its window (long + short rows), head.onnx. "streaming":
    # each frame is read once; its [CLS] sees the prompt and the last `stream_window` frames
    # through per-layer K/V rings (model/streaming/). Old checkpoints are "window".
    attention: str = "window"
    stream_window: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "task_names", tuple(self.task_names))
        object.__setattr__(self, "clip_questions", tuple(self.clip_questions))
        if self.kind not in CLASSIFIER_KINDS:
            raise ConfigError(f"kind must be one of {CLASSIFIER_KINDS}, got {self.kind!r}")
        if self.feature_dim <= 0:
            raise ConfigError(f"feature_dim must be positive, got {self.feature_dim}")
        if len(self.class_names) < 2:
            raise ConfigError(f"need at least 2 classes, got {len(self.class_names)}")
        _check_names(self.class_names, "class")
        if self.is_clip:
            _check_names(self.task_names, "task")
            if len(self.task_names) < 2:
                raise ConfigError(f"need at least 2 tasks, got {len(self.task_names)}")
            if self.clip_frames <= 0:
                raise ConfigError(f"a clip model needs clip_frames > 0, got {self.clip_frames}")
            if self.background_index is not None:
                raise ConfigError("a clip model's classes are steps: it has no background")
            if len(self.clip_questions) != 3 or not all(q.strip() for q in self.clip_questions):
                raise ConfigError(
                    f"clip_questions must be 3 questions (step, task, next step), got "
                    f"{list(self.clip_questions)}"
                )
        elif self.clip_frames:
            raise ConfigError("clip_frames is set but task_names is empty")
        self._check_frame_tokens()
        # Refuses names that read the same (a clip model's classes are its steps).
        label_texts(self.class_names, self.label_text, "step" if self.is_clip else "class")
        label_texts(self.task_names, self.label_text, "task")
        n = len(self.class_names)
        if self.background_index is not None and not 0 <= self.background_index < n:
            raise ConfigError(f"background_index {self.background_index} outside 0..{n - 1}")
        if self.lm_weight < 0 or self.background_weight < 0:
            raise ConfigError(
                f"loss weights must be >= 0, got lm_weight={self.lm_weight}, "
                f"background_weight={self.background_weight}"
            )
        if self.attention not in ATTENTIONS:
            raise ConfigError(f"attention must be one of {ATTENTIONS}, got {self.attention!r}")
        if self.attention == "streaming":
            if self.stream_window < 1:
                raise ConfigError(
                    f"streaming attention needs a window of >= 1 frame, got {self.stream_window}"
                )
            if not self.uses_cls or self.is_clip:
                raise ConfigError(
                    "streaming attention is for the per-frame [CLS] head (discriminative or gad)"
                )
        elif self.stream_window:
            raise ConfigError("stream_window is set but attention is 'window'")
        if self.long_frames < 0 or self.short_frames <= 0 or self.long_stride <= 0:
            raise ConfigError(
                f"window needs short_frames > 0, long_frames >= 0 and long_stride > 0, "
                f"got {self.short_frames}/{self.long_frames}/{self.long_stride}"
            )

    def _check_frame_tokens(self) -> None:
        """The clip model's tokens per row (the per-frame model reads one, unseparated)."""
        if self.frame_separator is None:
            object.__setattr__(self, "frame_separator", "," if self.tokens_per_frame > 1 else "")
        if self.tokens_per_frame < 1:
            raise ConfigError(f"tokens_per_frame must be >= 1, got {self.tokens_per_frame}")
        if self.frame_tokens not in FRAME_TOKENS:
            raise ConfigError(
                f"frame_tokens must be one of {FRAME_TOKENS}, got {self.frame_tokens!r}"
            )
        if self.frame_tokens == "split" and self.feature_dim % self.tokens_per_frame:
            raise ConfigError(
                f"frame_tokens 'split' cuts a row into {self.tokens_per_frame} token features: "
                f"feature_dim {self.feature_dim} is not a multiple of it"
            )
        if not self.is_clip and (self.tokens_per_frame != 1 or self.frame_separator):
            raise ConfigError(
                "tokens_per_frame and frame_separator are for the clip model (task_names set); "
                "the per-frame model reads one token per row"
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def window(self) -> WindowSpec:
        """The window the model is trained and served with (runtime/windowing.py)."""
        return WindowSpec(self.long_frames, self.short_frames, self.long_stride)

    @property
    def is_clip(self) -> bool:
        """The offline clip model (steps + tasks heads) rather than the per-frame one."""
        return bool(self.task_names)

    @property
    def uses_cls(self) -> bool:
        """`discriminative` and `gad` read a [CLS] token; `generative` decodes instead."""
        return self.kind != "generative"

    @property
    def is_streaming(self) -> bool:
        return self.attention == "streaming"

    @property
    def uses_lm_loss(self) -> bool:
        return self.kind != "discriminative"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("class_names", "task_names", "clip_questions"):
            data[key] = list(data[key])
        data["lora"]["target_modules"] = list(self.lora.target_modules)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(
                f"unknown model config keys {sorted(unknown)}; known: {sorted(known)}"
            )
        values = dict(data)
        # Checkpoints saved before `label_text` existed fed the raw names to the LM.
        values.setdefault("label_text", "raw")
        values["lora"] = LoraSettings(**values.get("lora", {}))
        # Checkpoints saved before `targets` existed had no newline after the question,
        # the LM loss on the answer alone and <eos> after every answer.
        targets = values.get("targets")
        values["targets"] = TargetRules.ours() if targets is None else TargetRules(**targets)
        return cls(**values)


def _check_names(names: tuple[str, ...], what: str) -> None:
    if len(set(names)) != len(names):
        raise ConfigError(f"{what} names must be unique, got {list(names)}")
    for name in names:
        # Commas are allowed (six of Ego4D-GoalStep's step names have them, "cut bacon,
        # sausage, or ham"): decoding matches the whole text before it cuts GAD's
        # ", {previous}" (model/generative.py). A newline would end the answer's line.
        if not name.strip() or name != name.strip() or "\n" in name:
            raise ConfigError(
                f"{what} name {name!r} must be non-empty text without surrounding "
                "spaces or newlines"
            )
