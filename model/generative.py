"""The generative paths of the GAD classifier: label log-likelihoods (the generative
baseline's per-frame scores) and greedy decoding, free (the paper's baseline: text mapped
to the nearest label by edit distance) or constrained to the label set by a prefix trie.
Mixed into `GADClassifier` (model/gad.py), whose sequence building they use."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein
from transformers import DynamicCache

from model.label_text import label_texts
from model.label_trie import LabelTrie
from model.lora import base_model


@dataclass
class Generation:
    indices: list[int]  # class index per window (nearest label when the text is not one)
    texts: list[str]  # the decoded label text, before mapping
    exact: list[bool]  # whether the text was exactly a class name


@dataclass
class Prefill:
    """prompt | frames | [CLS] | "\nAssistant:" read once: what scoring the answers and
    decoding one both continue (neither changes it: each builds its own cache on `kv`)."""

    last_hidden: torch.Tensor  # [B, 1, H] the last prompt position's hidden state
    kv: list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values
    attention: torch.Tensor  # [B, S]
    positions: torch.Tensor  # [B, S]


class GenerativePaths:
    """Decoding and label scoring over the model's prompt, decoder and lm_head."""

    @torch.no_grad()
    def prefill(
        self,
        features: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        prefix: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> Prefill:
        """One pass over the prompt, the window and "\nAssistant:" (`prefix`: the
        question prefix, as in `_sequence`), to hand to `label_log_likelihoods` and
        `generate` so that scoring and decoding the same windows read them once."""
        batch = features.shape[0]
        embeds, attention = self._sequence(
            features,
            mask,
            tail_ids=self.assistant_ids.expand(batch, -1),
            with_cls=self.config.uses_cls,
            prefix=prefix,
        )
        positions = self._positions(attention)
        out = self._decoder(embeds, attention, positions, past=DynamicCache())
        kv = [(layer.keys, layer.values) for layer in out.cache.layers]
        return Prefill(out.last_hidden_state[:, -1:], kv, attention, positions)

    @torch.no_grad()
    def label_log_likelihoods(
        self,
        features: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        rows_per_pass: int = 512,
        labels: Sequence[Sequence[int]] | None = None,
        prefilled: Prefill | None = None,
    ) -> torch.Tensor:
        """[B, C] log p(" {label text}" <eos> | window, "\nAssistant:") for every class:
        the class's answer teacher-forced after the window, its tokens' log-probabilities
        summed. That answer (`self.prompt.scored(c)`: the label text and <eos>, none after
        a bare background) is what the generative classifier is trained to emit, so a
        softmax over C gives its per-frame scores.

        One pass over the shared prompt | frames | [CLS] | "\nAssistant:" fills a KV
        cache; the C answers then run as B×C short continuations of it, at most
        `rows_per_pass` rows at a time (the cache is copied once per chunk of classes).

        `prefilled` (`prefill` of the same windows; default: read them here) lets a
        caller share that pass, and `labels` (token ids per class, default
        `self.prompt.labels`) with a prefill after a question prefix lets the clip model
        score its step or task names after the question it asked.
        """
        batch = features.shape[0]
        read = prefilled if prefilled is not None else self.prefill(features, mask)
        attention, positions, kv = read.attention, read.positions, read.kv
        if labels is None:
            rows = [self.prompt.scored(c) for c in range(len(self.prompt.labels))]
        else:
            rows = [[*label, self.prompt.eos] for label in labels]
        answers, valid = self._pad_answers(rows, features.device)  # [C, A], A ≥ 2
        classes, width = answers.shape
        # The last prompt token predicts each answer's first token.
        first = self._lm_head(read.last_hidden[:, -1]).float().log_softmax(-1)
        scores = first[:, answers[:, 0]]  # [B, C]
        chunk = max(1, rows_per_pass // batch)
        steps = torch.arange(1, width, device=features.device)
        for start in range(0, classes, chunk):
            ids, ok = answers[start : start + chunk], valid[start : start + chunk]
            n = ids.shape[0]
            # Row b·n + j continues window b with class start + j.
            cache = DynamicCache(
                [(k.repeat_interleave(n, 0), v.repeat_interleave(n, 0)) for k, v in kv]
            )
            tokens = ids.repeat(batch, 1)
            seen = torch.cat(
                [attention.repeat_interleave(n, 0), attention.new_ones(batch * n, width - 1)], dim=1
            )
            where = positions[:, -1:].repeat_interleave(n, 0) + steps
            hidden = self._decoder(
                self._embed_tokens(tokens[:, :-1]), seen, where, past=cache
            ).last_hidden_state
            logp = self._token_log_probs(hidden, tokens[:, 1:])  # [B·n, A-1]
            logp = logp.masked_fill(~ok[:, 1:].repeat(batch, 1), 0.0).sum(-1)
            scores[:, start : start + n] += logp.view(batch, n)
        return scores

    def _token_log_probs(
        self, hidden: torch.Tensor, targets: torch.Tensor, budget: int = 1 << 24
    ) -> torch.Tensor:
        """log p(targets) [N, L] from hidden states [N, L, H], the [N, L, vocab] logits
        taken a few rows at a time (≤ `budget` floats: a 128k vocabulary is large)."""
        vocab = base_model(self.lm).config.vocab_size
        step = max(1, budget // (hidden.shape[1] * vocab))
        out = []
        for i in range(0, hidden.shape[0], step):
            logits = self._lm_head(hidden[i : i + step]).float().log_softmax(-1)
            out.append(logits.gather(-1, targets[i : i + step, :, None])[..., 0])
        return torch.cat(out)

    @torch.no_grad()
    def generate(
        self,
        features: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        constrained: bool = False,
        max_new_tokens: int | None = None,
        prefilled: Prefill | None = None,
    ) -> Generation:
        """Greedy-decode a label per window with a KV cache (the generative baseline).

        By default decoding is free, as the paper's generative classifier runs: greedy
        until <eos> (for GAD also the comma before a previous action; a bare background,
        " background", ends it once read, as the authors decide background on its token),
        the text — cut before ", {previous}" unless it is a label as it stands — mapped to
        the nearest label text by edit distance. `constrained=True` walks the label trie
        instead, so only labels can come out: a stronger decoder than the paper's
        baseline, reported apart from it. `prefilled`: `prefill(features, mask)`, shared
        with `label_log_likelihoods` or another decoding of the same windows.
        """
        tokens = self._decode(
            features,
            mask,
            trie=self.trie,
            limit=max_new_tokens or self.prompt.max_answer_tokens,
            constrained=constrained,
            prefilled=prefilled,
        )
        return self._to_classes(tokens, self.config.class_names)

    def _decode(
        self,
        features: torch.Tensor,
        mask: torch.Tensor | None,
        *,
        trie: LabelTrie,
        limit: int,
        constrained: bool,
        prefilled: Prefill | None = None,
    ) -> list[list[int]]:
        """Greedy decoding after "\nAssistant:", constrained to `trie`'s labels or free."""
        read = prefilled if prefilled is not None else self.prefill(features, mask)
        attention, positions = read.attention, read.positions
        batch = features.shape[0]
        nodes: list[object | None] = [trie.root] * batch
        tokens: list[list[int]] = [[] for _ in range(batch)]
        done = [False] * batch
        # A cache of its own on the prefill's tensors (appending makes new ones): the
        # prefill stays as it was for the next reader.
        hidden, past = read.last_hidden, DynamicCache(list(read.kv))
        next_pos = positions[:, -1:]
        for _ in range(limit):
            logits = self._lm_head(hidden[:, -1]).float()
            if constrained:
                logits = logits + self._trie_mask(trie, nodes, done, logits)
            chosen = logits.argmax(-1)
            for i, token in enumerate(chosen.tolist()):
                if done[i]:
                    continue
                if constrained:
                    nodes[i] = trie.step(nodes[i], token)
                    if nodes[i] is None:
                        done[i] = True
                        continue
                    tokens[i].append(token)
                    done[i] = trie.is_final(nodes[i])
                elif token in trie.stops:
                    done[i] = True
                else:
                    tokens[i].append(token)
                    done[i] = tuple(tokens[i]) in trie.bare
            if all(done):
                break
            attention = torch.cat([attention, attention.new_ones(batch, 1)], dim=1)
            next_pos = next_pos + 1
            out = self._decoder(self._embed_tokens(chosen[:, None]), attention, next_pos, past)
            hidden, past = out.last_hidden_state, out.cache
        return tokens

    def _trie_mask(
        self, trie: LabelTrie, nodes: list, done: list[bool], logits: torch.Tensor
    ) -> torch.Tensor:
        mask = torch.full_like(logits, float("-inf"))
        for i, node in enumerate(nodes):
            allowed = [self.prompt.eos] if done[i] or node is None else trie.allowed(node)
            mask[i, allowed] = 0.0
        return mask

    def _to_classes(
        self,
        tokens: list[list[int]],
        names: tuple[str, ...],
        role: str = "class",
        cut: Callable[[str], str] | None = None,
    ) -> Generation:
        """Decoded answers → classes: the text as it stands when it is a label (names
        may hold commas), else the text `cut` leaves (default: before the first comma,
        where GAD's ", {previous}" starts), exact or the nearest by edit distance."""
        # Decoded text is label text.
        labels = list(label_texts(names, self.config.label_text, role))
        cut = cut or (lambda text: text.split(",")[0].strip())
        indices, exact, texts = [], [], []
        for t in tokens:
            text = self.tokenizer.decode(t, skip_special_tokens=True).strip()
            if text not in labels:
                text = cut(text)
            texts.append(text)
            if text in labels:
                indices.append(labels.index(text))
                exact.append(True)
            else:
                _, _, index = process.extractOne(text, labels, scorer=Levenshtein.distance)
                indices.append(int(index))
                exact.append(False)
        return Generation(indices=indices, texts=texts, exact=exact)
