"""The offline clip model: COIN's step recognition, task recognition and next-step
forecasting over whole clips, with two heads (steps, tasks) on the same [CLS].

Each clip is asked one of three questions (model/config.py CLIP_QUESTIONS), placed where
the per-frame model has its single question:

    question 0  step       [CLS] → step head    GAD target " {step}, {task}"
    question 1  task       [CLS] → task head    GAD target " {task}"
    question 2  next step  [CLS] → step head    GAD target " {next step}, {task}"

The three kinds work as for the per-frame model: `generative` decodes the answer (the text
before the comma, constrained to the step or task names), `discriminative` trains the
heads alone, `gad` trains the heads plus the LM loss on the targets and infers with the
heads. `clip_logits` answers all three questions in one batched pass: the exported graph.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.backbone import Backbone
from model.config import ModelConfig
from model.connector import ClsHead
from model.gad import GADClassifier, GADOutput, Generation
from model.prompt import ClipPrompt
from runtime.errors import ConfigError

STEP, TASK, NEXT = 0, 1, 2
QUESTIONS = ("step", "task", "next")


class ClipClassifier(GADClassifier):
    def __init__(self, config: ModelConfig, backbone: Backbone) -> None:
        if not config.is_clip:
            raise ConfigError("a clip model needs task_names and clip_frames in its config")
        super().__init__(config, backbone)
        self.clip_prompt = ClipPrompt.build(backbone.tokenizer, config)
        self.tries = [self.clip_prompt.trie(q) for q in range(len(QUESTIONS))]
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
                self.clip_prompt.answer(int(q), int(label), int(goal))
                for q, label, goal in zip(questions, labels, goals, strict=True)
            ]
            hidden, lm_loss = self._generative_pass(
                features, mask, self._pad_answers(rows, labels.device), prefix
            )
            if hidden is None:
                return GADOutput(loss=lm_loss, logits=None, cls_loss=None, lm_loss=lm_loss)
        steps, tasks = self._heads(hidden)
        cls_loss = self._clip_loss(steps, tasks, labels, questions)
        loss = cls_loss if lm_loss is None else cls_loss + cfg.lm_weight * lm_loss
        return GADOutput(loss=loss, logits=None, cls_loss=cls_loss, lm_loss=lm_loss)

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
    def generate_clip(
        self,
        features: torch.Tensor,
        mask: torch.Tensor | None,
        question: int,
        *,
        constrained: bool = True,
    ) -> Generation:
        """Greedy-decode the answer to one question for a batch of clips: a step name
        (questions 0 and 2, the text before ", {task}") or a task name (question 1)."""
        batch = features.shape[0]
        questions = torch.full((batch,), question, dtype=torch.long, device=features.device)
        tokens = self._decode(
            features,
            mask,
            trie=self.tries[question],
            limit=self.clip_prompt.max_answer_tokens(question),
            constrained=constrained,
            prefix=self._question_prefix(questions),
        )
        names = self.task_names if question == TASK else self.config.class_names
        return self._to_classes(tokens, names)


def new_classifier(config: ModelConfig, backbone: Backbone) -> nn.Module:
    """The classifier a config describes: per-frame (GADClassifier) or clip."""
    return ClipClassifier(config, backbone) if config.is_clip else GADClassifier(config, backbone)
