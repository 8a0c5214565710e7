"""The offline clip model: COIN's step recognition, task recognition and next-step
forecasting over whole clips, with two heads (steps, tasks) on the same [CLS].

Each clip is asked one of three questions (model/config.py CLIP_QUESTIONS), placed where
the per-frame model has its single question:

    question 0  step       [CLS] → step head    GAD target " {step}, {task}"
    question 1  task       [CLS] → task head    GAD target " {task}"
    question 2  next step  [CLS] → step head    GAD target " {next step}, {task}"

(Under the authors' label text, the default, the step reads as theirs with its period
and the task after a space: " Remove the old battery. Replace battery of remote." —
model/label_text.py, model/prompt.py ClipPrompt. With `targets.lm_on_prompt` the LM loss
also covers "\\nAssistant:" and the separator after each row, as their learn ranges.)

The three kinds work as for the per-frame model: `discriminative` trains the heads alone,
`gad` trains the heads plus the LM loss on the targets above and infers with the heads.
`generative` has no [CLS] and learns the answer alone, " {step}" / " {task}" <eos> (the
authors' generative COIN classifier: the label text, no task suffix); it greedy-decodes
the answer — free and mapped to the nearest name by edit distance (the paper's baseline),
or constrained to the names by a trie — and scores each name by the teacher-forced
log-likelihood of that answer (`question_log_likelihoods`). `clip_logits` answers all
three questions in one batched pass: the exported graph.

A row is one LLM token by default. The paper's COIN setup reads several tokens per frame
(an image [CLS] + 3×3 pooled patches: 10) joined by "," over clips of up to 1,200 rows
(10 min at 2 fps): config `tokens_per_frame` / `frame_tokens` / `frame_separator`, built
by the Connector (model/connector.py) and laid out here in `_sequence`.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from model.backbone import Backbone
from model.config import ModelConfig
from model.connector import ClsHead, Connector
from model.gad import GADClassifier, GADOutput
from model.generative import Generation, Prefill
from model.prompt import ClipPrompt
from runtime.errors import ConfigError

log = logging.getLogger(__name__)

STEP, TASK, NEXT = 0, 1, 2
QUESTIONS = ("step", "task", "next")


class ClipClassifier(GADClassifier):
    def __init__(self, config: ModelConfig, backbone: Backbone) -> None:
        if not config.is_clip:
            raise ConfigError("a clip model needs task_names and clip_frames in its config")
        super().__init__(config, backbone)
        self.clip_prompt = ClipPrompt.build(backbone.tokenizer, config)
        if config.tokens_per_frame > 1 or self.clip_prompt.separator:
            with torch.no_grad():  # the LM's own (frozen) embedding of the separator text
                ids = torch.tensor(self.clip_prompt.separator, dtype=torch.long)
                separator = self._embed_tokens(ids)
            self.connector = Connector(
                config.feature_dim,
                backbone.hidden_size,
                tokens=config.tokens_per_frame,
                layout=config.frame_tokens,
                separator=separator.reshape(-1, backbone.hidden_size),
            )
        longest = self.sequence_tokens(config.clip_frames)
        limit = getattr(backbone.model.config, "max_position_embeddings", None)
        if limit and longest > limit:
            log.warning(
                "a clip of %d rows is %d LLM tokens, past %s's %d positions",
                config.clip_frames,
                longest,
                config.backbone,
                limit,
            )
        with_task = config.kind != "generative"  # its answers are the name alone
        self.tries = [self.clip_prompt.trie(q, with_task=with_task) for q in range(len(QUESTIONS))]
        self.task_head: ClsHead | None = None
        if config.uses_cls:
            self.task_head = ClsHead(backbone.hidden_size, len(config.task_names))
        # The three question prefixes, left-padded to one length (padding takes no
        # position and is masked out, so a short question is unaffected by it).
        width = max(map(len, self.clip_prompt.questions))
        ids = torch.zeros(len(QUESTIONS), width, dtype=torch.long)
        mask = torch.zeros(len(QUESTIONS), width, dtype=torch.long)
        for q, tokens in enumerate(self.clip_prompt.questions):
            ids[q, width - len(tokens) :] = torch.tensor(tokens)
            mask[q, width - len(tokens) :] = 1
        self.register_buffer("question_ids", ids, persistent=False)
        self.register_buffer("question_mask", mask, persistent=False)
        self.frozen_questions: torch.Tensor | None = None

    @property
    def task_names(self) -> tuple[str, ...]:
        return self.config.task_names

    def sequence_tokens(self, rows: int) -> int:
        """LLM tokens of a clip of `rows` rows: question, frames, [CLS], longest answer."""
        frames = rows * self.connector.per_row - len(self.connector.separator)
        answer = len(self.prompt.assistant) + max(
            self.clip_prompt.max_answer_tokens(q) for q in range(len(QUESTIONS))
        )
        return max(map(len, self.clip_prompt.questions)) + frames + 1 + answer

    def _sequence(
        self,
        features: torch.Tensor,
        mask: torch.Tensor | None,
        *,
        tail_ids: torch.Tensor | None = None,
        tail_mask: torch.Tensor | None = None,
        with_cls: bool,
        prefix: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """GADClassifier's prefix | frames | [CLS] | tail, where a row is the connector's
        tokens (k per row, the separator between rows): the rows' mask, one entry per
        row in the frames' slot, becomes one entry per token."""
        embeds, attention = super()._sequence(
            features,
            mask,
            tail_ids=tail_ids,
            tail_mask=tail_mask,
            with_cls=with_cls,
            prefix=prefix,
        )
        if self.connector.one_token_per_row:
            return embeds, attention
        start = (self.prefix_ids if prefix is None else prefix[1][0]).shape[0]
        end = start + features.shape[1]
        frames = self.connector.token_mask(attention[:, start:end])
        attention = torch.cat([attention[:, :start], frames, attention[:, end:]], dim=1)
        return embeds, attention

    def freeze_prefix(self) -> None:
        super().freeze_prefix()
        with torch.no_grad():
            self.frozen_questions = self._embed_tokens(self.question_ids).detach().clone()

    def _question_embeds(self) -> torch.Tensor:
        if self.frozen_questions is not None:
            return self.frozen_questions
        return self._embed_tokens(self.question_ids)

    def _question_prefix(self, questions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if questions.min() < 0 or questions.max() >= len(QUESTIONS):
            raise ConfigError(f"questions must lie in 0..2, got {questions.tolist()}")
        return self._question_embeds()[questions], self.question_mask[questions]

    # --- one pass: the heads ---------------------------------------------------------

    def question_logits(
        self, features: torch.Tensor, mask: torch.Tensor | None, questions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(step logits [B, S], task logits [B, K]) for clips each asked `questions[b]`.
        A step or next-step question reads the first, a task question the second."""
        hidden = self._cls_hidden(features, mask, self._question_prefix(questions))
        return self._heads(hidden)

    def _heads(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.head is None or self.task_head is None:
            raise ConfigError("a generative clip model has no heads: use generate_clip()")
        return self.head(hidden), self.task_head(hidden)

    def clip_logits(
        self, features: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """All three answers for a batch of clips [B, T, D] in one batched forward pass:
        (step logits [B, S], task logits [B, K], next-step logits [B, S])."""
        batch, n = features.shape[0], len(QUESTIONS)
        if mask is None:
            mask = torch.ones(features.shape[:2], dtype=torch.long, device=features.device)
        # Rows [q * B + b]: question q of clip b (no indexing by values: exportable).
        embeds, qmask = self._question_embeds(), self.question_mask
        prefix = (
            embeds[:, None].expand(-1, batch, -1, -1).reshape(n * batch, *embeds.shape[1:]),
            qmask[:, None].expand(-1, batch, -1).reshape(n * batch, qmask.shape[1]),
        )
        hidden = self._cls_hidden(features.repeat(n, 1, 1), mask.repeat(n, 1), prefix)
        steps, tasks = self._heads(hidden)
        return steps[:batch], tasks[batch : 2 * batch], steps[2 * batch :]

    def class_logits(
        self, features: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        raise ConfigError("a clip model answers three questions: use clip_logits()")

    # --- training --------------------------------------------------------------------

    def forward(  # type: ignore[override]
        self,
        features: torch.Tensor,
        mask: torch.Tensor | None,
        labels: torch.Tensor,
        questions: torch.Tensor,
        goals: torch.Tensor,
    ) -> GADOutput:
        """Training loss for clips [B, T, D]: `questions` [B] (0 step, 1 task, 2 next),
        `labels` [B] the answer (a step, or a task for question 1), `goals` [B] the task
        of the clip's video (the second half of the step / next-step GAD target)."""
        cfg = self.config
        self._check_labels(labels, questions, goals)
        prefix = self._question_prefix(questions)
        if cfg.kind == "discriminative":
            hidden, lm_loss = self._cls_hidden(features, mask, prefix), None
        else:
            rows = [
                self._answer(int(q), int(label), int(goal))
                for q, label, goal in zip(questions, labels, goals, strict=True)
            ]
            hidden, lm_loss = self._generative_pass(
                features,
                mask,
                self._pad_answers(rows, labels.device),
                prefix,
                extra=self._separator_targets(features, mask),
            )
            if hidden is None:
                return GADOutput(loss=lm_loss, logits=None, cls_loss=None, lm_loss=lm_loss)
        steps, tasks = self._heads(hidden)
        cls_loss = self._clip_loss(steps, tasks, labels, questions)
        loss = cls_loss if lm_loss is None else cls_loss + cfg.lm_weight * lm_loss
        return GADOutput(loss=loss, logits=None, cls_loss=cls_loss, lm_loss=lm_loss)

    def _separator_targets(
        self, features: torch.Tensor, mask: torch.Tensor | None
    ) -> tuple[int, torch.Tensor, torch.Tensor] | None:
        """The row separators as LM targets (config `targets.lm_on_prompt`, the authors'
        learn ranges over their "," between frames): the separator after each real row
        but the last, its first token predicted by the row's last token. (start position,
        ids [B, N], which are targets [B, N]) over the frames' N tokens; None when the
        rows have no separator or the rule is off."""
        separator = self.clip_prompt.separator
        if not separator or not self.config.targets.lm_on_prompt:
            return None
        batch, rows = features.shape[:2]
        if mask is None:
            mask = torch.ones(batch, rows, dtype=torch.long, device=features.device)
        per_row, k = self.connector.per_row, self.connector.tokens
        width = rows * per_row - len(separator)
        position = torch.arange(width, device=features.device)
        row, offset = position // per_row, position % per_row
        is_separator = offset >= k  # a row's k tokens, then its separator's
        sep = torch.tensor(separator, dtype=torch.long, device=features.device)
        ids = torch.where(is_separator, sep[(offset - k).clamp(min=0)], -100).expand(batch, -1)
        keep = is_separator & mask[:, row].bool()
        return self.question_ids.shape[1], ids, keep

    def _answer(self, question: int, label: int, goal: int) -> list[int]:
        """LM target ids: GAD's " {step}, {task}" / " {task}" <eos>; the generative
        classifier's, as the authors train it, the answer alone: " {name}" <eos>."""
        if self.config.kind == "generative":
            return [*self._names(question)[label], self.clip_prompt.eos]
        return self.clip_prompt.answer(question, label, goal)

    def _names(self, question: int) -> tuple[tuple[int, ...], ...]:
        """Token ids of the names that answer `question`: tasks, or steps."""
        return self.clip_prompt.tasks if question == TASK else self.clip_prompt.steps

    def _check_labels(
        self, labels: torch.Tensor, questions: torch.Tensor, goals: torch.Tensor
    ) -> None:
        is_task = questions == TASK
        limits = torch.where(is_task, len(self.task_names), self.config.num_classes)
        if (labels < 0).any() or (labels >= limits).any():
            raise ConfigError(f"labels out of range for their questions: {labels.tolist()}")
        if (goals < 0).any() or (goals >= len(self.task_names)).any():
            raise ConfigError(f"goals must lie in 0..{len(self.task_names) - 1}")

    @staticmethod
    def _clip_loss(
        steps: torch.Tensor, tasks: torch.Tensor, labels: torch.Tensor, questions: torch.Tensor
    ) -> torch.Tensor:
        """Cross-entropy of each clip's answer under its own head, mean over the batch."""
        is_task = questions == TASK
        total = steps.new_zeros(())
        if (~is_task).any():
            total = total + F.cross_entropy(steps[~is_task], labels[~is_task], reduction="sum")
        if is_task.any():
            total = total + F.cross_entropy(tasks[is_task], labels[is_task], reduction="sum")
        return total / len(labels)

    # --- the generative baseline -----------------------------------------------------

    @torch.no_grad()
    def question_prefill(
        self, features: torch.Tensor, mask: torch.Tensor | None, question: int
    ) -> Prefill:
        """`prefill` after `question`'s prefix: what `question_log_likelihoods` and
        `generate_clip` of the same clips and question can share."""
        self._check_question(question)
        return self.prefill(
            features, mask, prefix=self._question_prefix(self._same_question(features, question))
        )

    @torch.no_grad()
    def generate_clip(
        self,
        features: torch.Tensor,
        mask: torch.Tensor | None,
        question: int,
        *,
        constrained: bool = False,
        prefilled: Prefill | None = None,
    ) -> Generation:
        """Greedy-decode the answer to one question for a batch of clips: a step name
        (questions 0 and 2, the text before any ", {task}") or a task name (question 1).

        Free by default, as the paper's generative baseline runs: greedy until <eos> (or
        a comma), the text mapped to the nearest name by edit distance. `constrained`
        walks the trie of the asked kind's names instead (a stronger decoder).
        `prefilled`: `question_prefill` of the same clips and question."""
        self._check_question(question)
        tokens = self._decode(
            features,
            mask,
            trie=self.tries[question],
            limit=self.clip_prompt.max_answer_tokens(question),
            constrained=constrained,
            prefilled=prefilled or self.question_prefill(features, mask, question),
        )
        if question == TASK:
            return self._to_classes(tokens, self.task_names, "task")
        return self._to_classes(
            tokens, self.config.class_names, "step", cut=self.clip_prompt.cut_step
        )

    @torch.no_grad()
    def question_log_likelihoods(
        self,
        features: torch.Tensor,
        mask: torch.Tensor | None,
        question: int,
        *,
        rows_per_pass: int = 512,
        prefilled: Prefill | None = None,
    ) -> torch.Tensor:
        """[B, names] log p(" {name}" <eos> | question, clip, "\nAssistant:") for every
        name that answers `question` (steps for 0 and 2, tasks for 1): the answer the
        generative classifier is trained to emit, teacher-forced (the per-frame model's
        `label_log_likelihoods` after this question's prefix). A softmax over the names
        gives the generative classifier's scores. `prefilled`: `question_prefill` of the
        same clips and question."""
        self._check_question(question)
        return self.label_log_likelihoods(
            features,
            mask,
            rows_per_pass=rows_per_pass,
            labels=self._names(question),
            prefilled=prefilled or self.question_prefill(features, mask, question),
        )

    @staticmethod
    def _check_question(question: int) -> None:
        if question not in range(len(QUESTIONS)):
            raise ConfigError(f"question must be 0 (step), 1 (task) or 2 (next), got {question}")

    @staticmethod
    def _same_question(features: torch.Tensor, question: int) -> torch.Tensor:
        return torch.full((features.shape[0],), question, dtype=torch.long, device=features.device)


def new_classifier(config: ModelConfig, backbone: Backbone) -> nn.Module:
    """The classifier a config describes: per-frame (GADClassifier) or clip."""
    return ClipClassifier(config, backbone) if config.is_clip else GADClassifier(config, backbone)
