"""A prefix trie over the token ids of the class labels, for constrained decoding.

Pure Python. A decoder walking the trie can only emit a valid label: at each node the
allowed tokens are the children, plus — once a whole label has been read — the tokens
that may follow a label in training targets (end of sequence, or the separator before
the previous action). Free decoding reads two more facts from it: the `stops`, tokens
that end the answer wherever they come, and the `bare` labels, answers trained without
<eos> (the authors' background), which end it once read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass
class _Node:
    children: dict[int, _Node] = field(default_factory=dict)
    label: int | None = None  # class index whose token sequence ends here


class LabelTrie:
    def __init__(
        self,
        sequences: Sequence[Sequence[int]],
        terminators: Iterable[int],
        *,
        stops: Iterable[int] | None = None,
        bare: Iterable[Sequence[int]] = (),
    ) -> None:
        self.root = _Node()
        self.terminators = frozenset(terminators)
        # Free decoding: the tokens that end an answer (default: the terminators), and
        # the labels that end it by themselves.
        self.stops = self.terminators if stops is None else frozenset(stops)
        self.bare = frozenset(tuple(b) for b in bare)
        for index, tokens in enumerate(sequences):
            if not tokens:
                raise ValueError(f"label {index} has no tokens")
            node = self.root
            for token in tokens:
                node = node.children.setdefault(token, _Node())
            if node.label is not None:
                raise ValueError(f"labels {node.label} and {index} tokenize identically")
            node.label = index
        clash = self.stops & set(self.root.children)
        if clash:
            raise ValueError(f"a label starts with a stop token {sorted(clash)}")

    def allowed(self, node: _Node) -> list[int]:
        tokens = list(node.children)
        if node.label is not None:
            tokens.extend(self.terminators)
        return tokens

    def is_final(self, node: _Node) -> bool:
        """A complete label with no longer label continuing it: nothing left to decode."""
        return node.label is not None and not node.children

    def step(self, node: _Node, token: int) -> _Node | None:
        """The node after `token`, or None when `token` ends the label here."""
        if token in node.children:
            return node.children[token]
        if node.label is not None and token in self.terminators:
            return None
        raise ValueError(f"token {token} is not allowed here; allowed: {self.allowed(node)}")
