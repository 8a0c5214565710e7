"""The token layout of a GAD sequence, built once from the tokenizer and the config.

    [<bos> question "\\n"] [frames, left-padded] [CLS] ["\\nAssistant:"] [" label" [", prev"] <eos>]
     prefix                one token per row     kind  assistant         answer (train / decode)

Each piece is tokenized on its own so that training targets, constrained decoding and
parsing all agree on the same token ids whatever the tokenizer merges across boundaries
(the prefix — question and newline — is one piece, as in the authors' template, where
the frame placeholders cut the text). The config's `targets` (model/config.py
TargetRules) say whether the newline is there and whether the background answer ends
with <eos>. Class names enter as their label text (model/label_text.py: "BaseballPitch"
→ "baseball pitch"; COIN steps "Remove the old battery.").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from model.config import ModelConfig
from model.label_text import AUTHORS_STYLES, label_texts
from model.label_trie import LabelTrie

ASSISTANT = "\nAssistant:"


def _tokens(
    tokenizer: PreTrainedTokenizerBase,
) -> tuple[Callable[[str], tuple[int, ...]], tuple[int, ...]]:
    """(ids of a piece of text tokenized on its own, the <bos> id or nothing)."""

    def ids(text: str) -> tuple[int, ...]:
        return tuple(tokenizer(text, add_special_tokens=False)["input_ids"])

    return ids, () if tokenizer.bos_token_id is None else (tokenizer.bos_token_id,)


def _question(
    ids: Callable[[str], tuple[int, ...]], question: str, config: ModelConfig
) -> tuple[int, ...]:
    """A question's ids, with the newline before the frames when the config has it."""
    return ids(question + "\n" if config.targets.question_newline else question)


@dataclass(frozen=True)
class PromptTokens:
    prefix: tuple[int, ...]
    assistant: tuple[int, ...]
    labels: tuple[tuple[int, ...], ...]  # " {label text}" per class
    previous: tuple[tuple[int, ...], ...]  # ", {label text}" per class
    eos: int
    # Classes whose answer has no <eos> when no previous action follows: the background,
    # as the authors train it (config targets.background_eos False).
    bare: frozenset[int] = frozenset()

    @classmethod
    def build(cls, tokenizer: PreTrainedTokenizerBase, config: ModelConfig) -> PromptTokens:
        ids, bos = _tokens(tokenizer)
        texts = label_texts(config.class_names, config.label_text)
        bg = config.background_index
        bare = (
            frozenset()
            if bg is None or config.targets.background_eos or config.is_clip
            else frozenset({bg})
        )
        return cls(
            prefix=bos + _question(ids, config.question, config),
            assistant=ids(ASSISTANT),
            labels=tuple(ids(" " + text) for text in texts),
            previous=tuple(ids(", " + text) for text in texts),
            eos=int(tokenizer.eos_token_id),
            bare=bare,
        )

    def answer(self, label: int, previous: int | None = None) -> list[int]:
        """Target ids after the assistant prompt: label, optional previous action, <eos>
        (none after a bare background: " background", as the authors' silence turn)."""
        tokens = list(self.labels[label])
        if previous is not None and previous >= 0:
            tokens.extend(self.previous[previous])
        elif label in self.bare:
            return tokens
        tokens.append(self.eos)
        return tokens

    def scored(self, label: int) -> list[int]:
        """The answer a label's log-likelihood scores: its text and <eos> (no <eos> for
        a bare background), no previous action — what the generative classifier emits."""
        return self.answer(label)

    @property
    def max_answer_tokens(self) -> int:
        return max(map(len, self.labels)) + max(map(len, self.previous)) + 1

    def trie(self, *, with_previous: bool = True) -> LabelTrie:
        """The labels' trie. With `with_previous` (GAD's targets) a label may be followed
        by ", {previous}", whose first token then ends decoding; without (the generative
        classifier's targets: the label alone) only <eos> does."""
        stops = {self.eos, *(p[0] for p in self.previous)} if with_previous else {self.eos}
        return LabelTrie(
            self.labels,
            terminators=stops,
            bare=[self.labels[c] for c in self.bare],
        )


@dataclass(frozen=True)
class ClipPrompt:
    """The clip model's tokens: one question prefix per task, step and task labels.

        step / next:  [<bos> question] [frames] [CLS] "\\nAssistant:" " step" ", task" <eos>
        task:         [<bos> question] [frames] [CLS] "\\nAssistant:" " task" <eos>

    (The authors' GAD targets: the step label plus the task name for step recognition and
    forecasting, the task name for task recognition.) [frames] is k tokens per row with
    the `separator` text's tokens between rows (config `tokens_per_frame`,
    `frame_separator`; none by default). Under the authors' label text the step ends with
    its period and the task follows after a space, as theirs: " Remove the old battery.
    Replace battery of remote." (`task_suffix` " {task}"); otherwise ", {task}".
    """

    questions: tuple[tuple[int, ...], ...]  # per question: <bos> + question
    steps: tuple[tuple[int, ...], ...]  # " {step text}"
    tasks: tuple[tuple[int, ...], ...]  # " {task text}"
    task_suffix: tuple[tuple[int, ...], ...]  # ", {task text}"
    eos: int
    separator: tuple[int, ...] = ()  # between frames' tokens
    join: str = ", "  # text between a step and its task in GAD's target

    @classmethod
    def build(cls, tokenizer: PreTrainedTokenizerBase, config: ModelConfig) -> ClipPrompt:
        ids, bos = _tokens(tokenizer)
        steps = label_texts(config.class_names, config.label_text, "step")
        tasks = label_texts(config.task_names, config.label_text, "task")
        join = " " if config.label_text in AUTHORS_STYLES else ", "
        return cls(
            questions=tuple(bos + _question(ids, q, config) for q in config.clip_questions),
            steps=tuple(ids(" " + text) for text in steps),
            tasks=tuple(ids(" " + text) for text in tasks),
            task_suffix=tuple(ids(join + text) for text in tasks),
            eos=int(tokenizer.eos_token_id),
            separator=ids(config.frame_separator) if config.frame_separator else (),
            join=join,
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

    def trie(self, question: int, *, with_task: bool = True) -> LabelTrie:
        """The names that answer `question`. With `with_task` (GAD's step targets) a step
        may be followed by its task suffix: in constrained decoding the suffix's first
        token ends the step; free decoding runs to <eos> (a task's first word may also
        start a step under the authors' " {task}" suffix) and `cut_step` finds the step
        in the text; after ", {task}" the comma stops it."""
        if question == 1:
            return LabelTrie(self.tasks, terminators={self.eos})
        if not with_task:
            return LabelTrie(self.steps, terminators={self.eos})
        suffix = {s[0] for s in self.task_suffix}
        stops = {self.eos} if self.join == " " else {self.eos, *suffix}
        return LabelTrie(self.steps, terminators={self.eos, *suffix}, stops=stops)

    def cut_step(self, text: str) -> str:
        """The step in decoded step-question text: before ", {task}", or up to the
        step's period before " {Task}." (the authors' layout)."""
        if self.join == " ":
            end = text.find(". ")
            return text if end < 0 else text[: end + 1]
        return text.split(",")[0].strip()
