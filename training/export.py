"""Export a trained run to a model package, verified on its own data (`gad export --data`):
the exported graphs are compared with PyTorch on windows and clips of a test video rather
than on random rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from model.checkpoint_info import read_checkpoint_info, resolve_checkpoint
from model.export.graph import DEFAULT_TOLERANCE
from model.export.package import ExportResult, export_package
from runtime.errors import ConfigError
from training.clips import load_clip_videos, open_clip_source
from training.data_info import load_data_info
from training.dataset import load_video


def frame_probe_rows(data: Path) -> np.ndarray:
    """The first test video's feature rows."""
    info = load_data_info(Path(data))
    video = load_video(info, info.test_sessions[0])
    return np.asarray(video.features, dtype=np.float32)


def clip_probe_rows(data: Path) -> np.ndarray | None:
    """The first test video's rows when `data` has clip annotations, else None."""
    try:
        videos = load_clip_videos(open_clip_source(Path(data)), "test", limit=1)
    except ConfigError:  # no clip annotations there
        return None
    return np.asarray(videos[0].features, dtype=np.float32)


def export_run(
    checkpoint: Path,
    out: Path,
    *,
    data: Path | None = None,
    clip: Path | None = None,
    tolerance: float | None = None,
    **options: Any,
) -> ExportResult:
    """`gad export`: `export_package` with probes from `data` — the per-frame model is
    checked on frame windows, a clip model (`clip`, or a clip checkpoint itself) on clip
    spans. `checkpoint` and `clip` may be run folders; `tolerance` None is the default."""
    checkpoint = resolve_checkpoint(checkpoint)
    clip = None if clip is None else resolve_checkpoint(clip)
    if tolerance is None:
        tolerance = DEFAULT_TOLERANCE
    clip_only = read_checkpoint_info(Path(checkpoint)).config.is_clip
    frame_rows = clip_rows = None
    if data is not None:
        frame_rows = None if clip_only else frame_probe_rows(data)
        if clip_only or clip is not None:
            clip_rows = clip_probe_rows(data)
    return export_package(
        checkpoint,
        out,
        clip=clip,
        tolerance=tolerance,
        probe_rows=frame_rows,
        clip_probe_rows=clip_rows,
        **options,
    )
