"""Training samples for streaming attention: long crops of whole videos, every frame
supervised (`gad train --attention streaming`).

A crop of N frames starts at a random frame, or — with probability `start_share` — at the
video's start, where a live stream starts too. In a crop that does not start the video,
the first W−1 frames lack part of their own window and are left out of the loss.
Each frame also carries its previous action (the authors' rule, `previous_action`, over
the W frames it sees) for GAD's LM target, when data_info.json asks for one.
(Through L layers a frame's information reaches L·(W−1) frames ahead, so frames up to
that far into a mid-video crop still see a shorter deep history than live; crops from
the video's start are exact.) Labels are in model class space, -100 where not supervised
(the ignore class, cut windows, padding).
"""

from __future__ import annotations

import numpy as np

from training.data_info import DataInfo
from training.dataset import FeatureVideo, previous_actions

IGNORED = -100


class StreamCrops:
    """Items (features [N, D] float32, mask [N] uint8, labels [N] int64, previous [N]
    int64, -1 = none): about one crop per N frames of each video per epoch, seeded by
    (seed, epoch). Labels and previous actions are in model class space."""

    def __init__(
        self,
        videos: list[FeatureVideo],
        info: DataInfo,
        *,
        crop: int,
        history: int,
        start_share: float = 0.25,
        seed: int = 0,
    ) -> None:
        if crop <= history:
            raise ValueError(f"crops of {crop} frames leave nothing past a window of {history + 1}")
        self.videos, self.info, self.crop, self.history = videos, info, crop, history
        self.start_share, self.seed = start_share, seed
        self.index: list[tuple[int, int]] = []
        self.previous = [self._previous(video) for video in videos]
        self.set_epoch(0)

    def _previous(self, video: FeatureVideo) -> np.ndarray:
        """Each frame's previous action in model class space (-1: none or not asked for)."""
        info = self.info
        if not info.previous_action:
            return np.full(len(video), -1, np.int64)
        found = previous_actions(
            video.labels,
            short=self.history + 1,
            background=info.background_index,
            ignore=info.ignore_index,
            rule=info.previous_rule,
        )
        return np.array([info.to_model_index(int(p)) if p >= 0 else -1 for p in found], np.int64)

    def set_epoch(self, epoch: int) -> None:
        rng = np.random.default_rng([self.seed, epoch, 11])
        index = []
        for v, video in enumerate(self.videos):
            for _ in range(max(1, round(len(video) / self.crop))):
                latest = max(0, len(video) - self.crop)
                start = 0 if rng.random() < self.start_share else int(rng.integers(latest + 1))
                index.append((v, start))
        self.index = index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        v, start = self.index[i]
        video = self.videos[v]
        rows = np.asarray(video.features[start : start + self.crop], dtype=np.float32)
        n = len(rows)
        features = np.zeros((self.crop, rows.shape[1]), np.float32)
        features[:n] = rows
        mask = np.zeros(self.crop, np.uint8)
        mask[:n] = 1
        labels = np.full(self.crop, IGNORED, np.int64)
        for t, label in enumerate(video.labels[start : start + n]):
            if label != self.info.ignore_index:
                labels[t] = self.info.to_model_index(int(label))
        if start > 0:
            labels[: self.history] = IGNORED
        previous = np.full(self.crop, -1, np.int64)
        previous[:n] = self.previous[v][start : start + n]
        return features, mask, labels, previous


def collate_crops(items: list[tuple[np.ndarray, ...]]) -> dict:
    import torch

    return {
        "features": torch.from_numpy(np.stack([i[0] for i in items])),
        "mask": torch.from_numpy(np.stack([i[1] for i in items])).long(),
        "labels": torch.from_numpy(np.stack([i[2] for i in items])),
        "previous": torch.from_numpy(np.stack([i[3] for i in items])),
    }
