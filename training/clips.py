"""Clip samples for the offline tasks, from COIN-style annotations over feature files.

    ROOT/coin.json                     (or --annotations FILE; training/data/coin.py)
    ROOT/<feature_dir>/<video id>.npy  [frames, D] at `fps`, concatenated over feature dirs

Per video with steps s_1 … s_n (task k):

    step   the rows of step i            → s_i        (n samples)
    task   the rows of s_1 … s_n's span  → k          (1 sample)
    next   the rows of step i            → s_{i+1}    (n - 1 samples)

A clip longer than `max_frames` rows is uniformly subsampled by runtime/windowing.py's
`build_clip` (the function /classify uses): bin middles for evaluation, a random row per
bin for training. `max_frames` may be the paper's 1,200 (10 min at 2 fps): a batch is cut
to its longest clip (`collate_clips`), so short step clips do not pay for it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model.clip import NEXT, STEP, TASK
from runtime.errors import ConfigError
from runtime.windowing import build_clip
from training.data.coin import COIN_FILE, CoinAnnotations, CoinVideo, load_coin
from training.data_info import DATA_INFO, load_data_info

log = logging.getLogger(__name__)

MIN_ROWS = 2  # a batch keeps at least this many rows (clip.onnx's time axis starts at 2)


@dataclass(frozen=True)
class ClipSource:
    """Where a clip dataset's pieces are: annotations, feature folders, their fps."""

    root: Path
    annotations: CoinAnnotations
    feature_dirs: tuple[str, ...]
    fps: float
    encoder: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.root.name


@dataclass(frozen=True)
class ClipSample:
    video: int  # index into the loaded videos
    start: int  # rows [start, end)
    end: int
    question: int  # STEP | TASK | NEXT
    label: int  # step index (STEP, NEXT) or task index (TASK)
    goal: int  # the video's task index


@dataclass
class ClipVideo:
    video_id: str
    features: np.ndarray  # [T, D]
    task: int
    steps: list[tuple[int, int, int]]  # (step index, start row, end row), by start


def open_clip_source(
    root: Path,
    *,
    annotations: Path | None = None,
    feature_dirs: list[str] | None = None,
    fps: float | None = None,
    dataset: str | None = None,
) -> ClipSource:
    """Annotations from `annotations` (default ROOT/coin.json); feature folders and fps
    from the arguments, else from ROOT/data_info.json."""
    root = Path(root)
    coin = load_coin(annotations or root / COIN_FILE)
    encoder = None
    if (root / DATA_INFO).is_file():
        info = load_data_info(root, dataset, feature_dirs=feature_dirs)
        feature_dirs = feature_dirs or list(info.feature_dirs)
        fps = fps or info.fps
        encoder = info.encoder
    if not feature_dirs or not fps:
        raise ConfigError(
            f"{root} has no {DATA_INFO}: give --feature-dirs and --fps for the feature files"
        )
    if fps <= 0:
        raise ConfigError(f"fps must be positive, got {fps}")
    return ClipSource(root, coin, tuple(feature_dirs), float(fps), encoder)


def load_clip_videos(
    source: ClipSource, split: str, *, limit: int | None = None
) -> list[ClipVideo]:
    """The split's videos with features; videos without feature files are skipped (COIN
    has dead links), but a split with none at all is an error."""
    coin = source.annotations
    steps = {name: i for i, name in enumerate(coin.step_names)}
    tasks = {name: i for i, name in enumerate(coin.task_names)}
    videos, missing = [], []
    for video in coin.split(split)[:limit]:
        features = _features(source, video.video_id)
        if features is None:
            missing.append(video.video_id)
            continue
        videos.append(
            ClipVideo(
                video.video_id,
                features,
                tasks[video.task],
                [(steps[s.label], *_rows(source, video, s, len(features))) for s in video.steps],
            )
        )
    if missing:
        log.warning(
            "%d %s videos have no feature files, skipped (first: %s)",
            len(missing),
            split,
            missing[0],
        )
    if not videos:
        raise ConfigError(
            f"no {split} videos of {coin.path} have features under "
            f"{source.root}/{{{','.join(source.feature_dirs)}}}"
        )
    dims = {v.features.shape[1] for v in videos}
    if len(dims) != 1:
        raise ConfigError(f"feature sizes differ across {split} videos: {sorted(dims)}")
    return videos


def _features(source: ClipSource, video_id: str) -> np.ndarray | None:
    parts = []
    for feature_dir in source.feature_dirs:
        path = source.root / feature_dir / f"{video_id}.npy"
        if not path.is_file():
            return None
        array = np.load(path, mmap_mode="r")
        if array.ndim != 2 or not len(array):
            raise ConfigError(f"{path} has shape {list(array.shape)}, expected [frames, features]")
        parts.append(array)
    if len({len(p) for p in parts}) != 1:
        raise ConfigError(f"video {video_id}: feature folders have different lengths")
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def _rows(source: ClipSource, video: CoinVideo, step: Any, frames: int) -> tuple[int, int]:
    """A segment in seconds → rows [start, end) at the features' fps (at least one row)."""
    start = math.floor(step.start_s * source.fps + 1e-6)
    end = max(start + 1, math.ceil(step.end_s * source.fps - 1e-6))
    if start >= frames:
        raise ConfigError(
            f"video {video.video_id}: step {step.label!r} starts at {step.start_s:g} s but the "
            f"features end at {frames / source.fps:g} s ({frames} rows at {source.fps:g} fps)"
        )
    return start, min(end, frames)


def clip_samples(videos: list[ClipVideo]) -> list[ClipSample]:
    """Every step, task and next-step sample of the videos (see the module docstring)."""
    samples = []
    for v, video in enumerate(videos):
        for i, (step, start, end) in enumerate(video.steps):
            samples.append(ClipSample(v, start, end, STEP, step, video.task))
            if i + 1 < len(video.steps):
                samples.append(ClipSample(v, start, end, NEXT, video.steps[i + 1][0], video.task))
        first = min(start for _, start, _ in video.steps)
        last = max(end for _, _, end in video.steps)
        samples.append(ClipSample(v, first, last, TASK, video.task, video.task))
    return samples


class ClipSamples:
    """Training or evaluation items (clip [N, D], mask [N], label, question, goal).

    Training (`jitter`) draws a random row per subsampling bin, seeded by (seed, epoch,
    item) so a resumed run sees the same clips. Works as a torch Dataset without torch."""

    def __init__(
        self,
        videos: list[ClipVideo],
        max_frames: int,
        *,
        seed: int = 0,
        jitter: bool = False,
        questions: tuple[int, ...] = (STEP, TASK, NEXT),
    ) -> None:
        self.videos, self.max_frames, self.seed, self.jitter = videos, max_frames, seed, jitter
        self.samples = [s for s in clip_samples(videos) if s.question in questions]
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, int, int, int]:
        s = self.samples[i]
        rng = np.random.default_rng([self.seed, self.epoch, i]) if self.jitter else None
        clip, mask = build_clip(
            np.asarray(self.videos[s.video].features),
            self.max_frames,
            start=s.start,
            end=s.end,
            rng=rng,
        )
        return clip, mask, s.label, s.question, s.goal


def collate_clips(items: list[tuple[np.ndarray, np.ndarray, int, int, int]]) -> dict[str, Any]:
    """A batch of clips, cut to its longest clip: the left padding no clip of the batch
    needs is dropped (it is masked out and takes no position, so nothing else changes),
    so a batch of 30-row steps under `max_frames` = 1,200 reads 30 rows, not 1,200."""
    import torch

    features, mask = np.stack([i[0] for i in items]), np.stack([i[1] for i in items])
    cut = min(int(mask.any(0).argmax()), max(mask.shape[1] - MIN_ROWS, 0))
    return {
        "features": torch.from_numpy(np.ascontiguousarray(features[:, cut:])),
        "mask": torch.from_numpy(mask[:, cut:]).long(),
        "labels": torch.tensor([i[2] for i in items]),
        "questions": torch.tensor([i[3] for i in items]),
        "goals": torch.tensor([i[4] for i in items]),
    }
