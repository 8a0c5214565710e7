"""The token layout of a GAD sequence, built once from the tokenizer and the config.

    [<bos> question] [frames, left-padded] [CLS] ["\\nAssistant:"] [" label" [", prev"] <eos>]
     prefix           one token per row     kind  assistant         answer (train / decode)

Each piece is tokenized on its own so that training targets, constrained decoding and
parsing all agree on the same token ids whatever the tokenizer merges across boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from model.config import ModelConfig
from model.label_trie import LabelTrie

ASSISTANT = "\nAssistant:"


@dataclass(frozen=True)
class PromptTokens:
    prefix: tuple[int, ...]
    assistant: tuple[int, ...]
    labels: tuple[tuple[int, ...], ...]  # " {name}" per class
    previous: tuple[tuple[int, ...], ...]  # ", {name}" per class
    eos: int

    @classmethod
    def build(cls, tokenizer: PreTrainedTokenizerBase, config: ModelConfig) -> PromptTokens:
        def ids(text: str) -> tuple[int, ...]:
            return tuple(tokenizer(text, add_special_tokens=False)["input_ids"])

        bos = () if tokenizer.bos_token_id is None else (tokenizer.bos_token_id,)
        return cls(
            prefix=bos + ids(config.question),
            assistant=ids(ASSISTANT),
            labels=tuple(ids(" " + name) for name in config.class_names),
            previous=tuple(ids(", " + name) for name in config.class_names),
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
