"""StreamingObjective: what `gad train --attention streaming` optimises — cross-entropy at
every frame's [CLS] of a banded TRAIN pass (model/streaming/runner.py), + for GAD the LM
loss of each frame's label text, which reads what its [CLS] reads."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from model.gad import GADClassifier, GADOutput
from model.streaming.runner import StreamingGAD
from runtime.errors import ConfigError


class StreamingObjective(torch.nn.Module):
    """The training loss of a streaming model over sequences: cross-entropy at every
    frame's [CLS] (background frames weighted by `background_weight`), frames with label
    -100 left out; for GAD, + λ · the LM loss on every supervised frame's label text
    ("\nAssistant: {label}[, {previous}]<eos>" after its [CLS], seeing what the [CLS]
    sees; the targets as the windowed model's, model/gad.py). What `gad train --attention
    streaming` optimises; `model` is what is saved."""

    def __init__(self, model: GADClassifier) -> None:
        super().__init__()
        cfg = model.config
        if not cfg.is_streaming:
            raise ConfigError("the model was not configured for streaming attention")
        self.model = model
        self.stream = StreamingGAD(model, cfg.stream_window)

    def forward(
        self,
        features: torch.Tensor,
        mask: torch.Tensor,
        labels: torch.Tensor,
        previous: torch.Tensor | None = None,
    ) -> GADOutput:
        cfg = self.model.config
        tail = self._tails(labels, previous) if cfg.uses_lm_loss else None
        cls, tail_hidden = self.stream.frame_pass(features, mask, None if tail is None else tail[0])
        assert self.model.head is not None
        logits = self.model.head(cls.float())
        per_frame = F.cross_entropy(
            logits.flatten(0, 1), labels.flatten(), reduction="none", ignore_index=-100
        )
        supervised = (labels.flatten() != -100).float()
        weight = supervised
        bg = cfg.background_index
        if bg is not None:  # as the windowed loss: weighted, then the mean over samples
            weight = torch.where(labels.flatten() == bg, weight * cfg.background_weight, weight)
        cls_loss = (per_frame * weight).sum() / supervised.sum().clamp(min=1.0)
        if tail is None or tail_hidden is None:
            return GADOutput(loss=cls_loss, logits=logits, cls_loss=cls_loss, lm_loss=None)
        lm_loss = self._lm_loss(cls, tail_hidden, tail[1])
        loss = cls_loss + cfg.lm_weight * lm_loss
        return GADOutput(loss=loss, logits=logits, cls_loss=cls_loss, lm_loss=lm_loss)

    def _tails(
        self, labels: torch.Tensor, previous: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every frame's tail ids [B, N, A] ("\\nAssistant:" + answer, right-padded) and
        which of them are LM targets [B, N, A] (their ids, -100 elsewhere): the answer's
        tokens, and with `targets.lm_on_prompt` those of "\\nAssistant:" too, on every
        supervised frame."""
        prompt = self.model.prompt
        assistant = list(prompt.assistant)
        on_prompt = self.model.config.targets.lm_on_prompt
        flat = labels.flatten().tolist()
        prev = [-1] * len(flat) if previous is None else previous.flatten().tolist()
        answers = [
            prompt.answer(lab, prv) if lab >= 0 else [] for lab, prv in zip(flat, prev, strict=True)
        ]
        width = len(assistant) + max(1, max(map(len, answers)))
        ids = torch.full((len(flat), width), prompt.eos, dtype=torch.long)
        targets = torch.full((len(flat), width), -100, dtype=torch.long)
        ids[:, : len(assistant)] = torch.tensor(assistant)
        for i, answer in enumerate(answers):
            end = len(assistant) + len(answer)
            ids[i, len(assistant) : end] = torch.tensor(answer)
            if answer:
                start = 0 if on_prompt else len(assistant)
                targets[i, start:end] = ids[i, start:end]
        shape = (*labels.shape, -1)
        device = labels.device
        return ids.reshape(shape).to(device), targets.reshape(shape).to(device)

    def _lm_loss(
        self, cls: torch.Tensor, tail_hidden: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        """Mean cross-entropy of the target tokens, each predicted by the token before it
        (the first tail token by the frame's [CLS])."""
        predictors = torch.cat([cls[:, :, None], tail_hidden[:, :, :-1]], dim=2)
        keep = targets != -100
        if not bool(keep.any()):
            return tail_hidden.sum() * 0.0
        logits = self.model.lm_logits(predictors[keep]).float()
        return F.cross_entropy(logits, targets[keep])
