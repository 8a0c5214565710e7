"""The token layout of a GAD sequence, built once from the tokenizer and the config.

    [<bos> question] [frames, left-padded] [CLS] ["\\nAssistant:"] [" label" [", prev"] <eos>]
     prefix           one token per row     kind  assistant         answer (train / decode)

Each piece is tokenized on its own so that training targets, constrained decoding and
parsing all agree on the same token ids whatever the tokenizer merges across boundaries.
Class names enter as their label text (model/label_text.py: "BaseballPitch" → "baseball
pitch" unless the config says `raw`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from model.config import ModelConfig
from model.label_text import label_texts
from model.label_trie import LabelTrie

ASSISTANT = "\nAssistant:"


def _tokens(
    tokenizer: PreTrainedTokenizerBase,
) -> tuple[Callable[[str], tuple[int, ...]], tuple[int, ...]]:
    """(ids of a piece of text tokenized on its own, the <bos> id or nothing)."""

    def ids(text: str) -> tuple[int, ...]:
        return tuple(tokenizer(text, add_special_tokens=False)["input_ids"])

    return ids, () if tokenizer.bos_token_id is None else (tokenizer.bos_token_id,)


@dataclass(frozen=True)
class PromptTokens:
    prefix: tuple[int, ...]
    assistant: tuple[int, ...]
    labels: tuple[tuple[int, ...], ...]  # " {label text}" per class
    previous: tuple[tuple[int, ...], ...]  # ", {label text}" per class
    eos: int

    @classmethod
    def build(cls, tokenizer: PreTrainedTokenizerBase, config: ModelConfig) -> PromptTokens:
        ids, bos = _tokens(tokenizer)
        texts = label_texts(config.class_names, config.label_text)
        return cls(
            prefix=bos + ids(config.question),
            assistant=ids(ASSISTANT),
            labels=tuple(ids(" " + text) for text in texts),
            previous=tuple(ids(", " + text) for text in texts),
            eos=int(tokenizer.eos_token_id),
        )

    def answer(self, label: int, previous: int | None = None) -> list[int]:
        """Target ids after the assistant prompt: label, optional previous action, <eos>."""
        tokens = list(self.labels[label])
        if previous is not None and previous >= 0:
            tokens.extend(self.previous[previous])
        tokens.append(self.eos)
        return tokens

    @property
    def max_answer_tokens(self) -> int:
        return max(map(len, self.labels)) + max(map(len, self.previous)) + 1

    def trie(self) -> LabelTrie:
        return LabelTrie(self.labels, terminators={self.eos, *(p[0] for p in self.previous)})


@dataclass(frozen=True)
class ClipPrompt:
    """The clip model's tokens: one question prefix per task, step and task labels.

        step / next:  [<bos> question] [frames] [CLS] "\\nAssistant:" " step" ", task" <eos>
        task:         [<bos> question] [frames] [CLS] "\\nAssistant:" " task" <eos>

    (The authors' GAD targets: the step label plus the task name for step recognition and
    forecasting, the task name for task recognition.) [frames] is k tokens per row with
    the `separator` text's tokens between rows (config `tokens_per_frame`,
    `frame_separator`; none by default).
    """

    questions: tuple[tuple[int, ...], ...]  # per question: <bos> + question
    steps: tuple[tuple[int, ...], ...]  # " {step text}"
    tasks: tuple[tuple[int, ...], ...]  # " {task text}"
    task_suffix: tuple[tuple[int, ...], ...]  # ", {task text}"
    eos: int
    separator: tuple[int, ...] = ()  # between frames' tokens

    @classmethod
    def build(cls, tokenizer: PreTrainedTokenizerBase, config: ModelConfig) -> ClipPrompt:
        ids, bos = _tokens(tokenizer)
        steps = label_texts(config.class_names, config.label_text)
        tasks = label_texts(config.task_names, config.label_text, "task")
        return cls(
            questions=tuple(bos + ids(q) for q in config.clip_questions),
            steps=tuple(ids(" " + text) for text in steps),
            tasks=tuple(ids(" " + text) for text in tasks),
            task_suffix=tuple(ids(", " + text) for text in tasks),
            eos=int(tokenizer.eos_token_id),
            separator=ids(config.frame_separator) if config.frame_separator else (),
        )

    def answer(self, question: int, label: int, task: int) -> list[int]:
        """Target ids after the assistant prompt for `question` (0 step, 1 task, 2 next)."""
        if question == 1:
            return [*self.tasks[label], self.eos]
        return [*self.steps[label], *self.task_suffix[task], self.eos]

    def max_answer_tokens(self, question: int) -> int:
        if question == 1:
            return max(map(len, self.tasks)) + 1
        return max(map(len, self.steps)) + max(map(len, self.task_suffix)) + 1

    def trie(self, question: int) -> LabelTrie:
        if question == 1:
            return LabelTrie(self.tasks, terminators={self.eos})
        return LabelTrie(self.steps, terminators={self.eos, *(s[0] for s in self.task_suffix)})
