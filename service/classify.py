"""`POST /classify`: a whole clip → per-frame labels, merged segments, a clip-level label,
and — when the package has a clip model — the clip's procedure: its step, its task and the
step that comes next.

A video is sampled at the model's fps by runtime/video.py (the rule streams use), encoded,
and every frame's window is built by runtime/windowing.py — so a clip classified here and the
same clip streamed frame by frame get the same labels. Feature input at another fps is
resampled by the same timestamp rule. The clip model reads the same rows, subsampled to its
`max_frames` by runtime.windowing.build_clip (the rule it was trained with).

Refusals are service/errors.py's domain errors (TooLarge, UnusableInput); the HTTP layer
gives them their statuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtime.engine import ClipModel
from runtime.pose.track import clip_encoder
from runtime.preprocess import FrameError
from runtime.segments import SegmentRule, action_segments
from runtime.video import FpsSampler, FrameReader, VideoError
from runtime.windowing import build_clip
from service.errors import ServiceError, TooLarge, UnusableInput
from service.frames import feature_rows
from service.served import ServedModel

ENCODE_BATCH = 16  # FrameEncoder.encode's own batch size
PROCEDURE_TOP = 5  # alternatives listed for each procedure answer


@dataclass
class ClipRows:
    rows: np.ndarray  # [T, D] at the model's fps
    source: dict[str, Any]


def video_rows(served: ServedModel, path: Path) -> ClipRows:
    """Decode + sample + encode a video file (blocking: run it in a worker thread)."""
    try:
        return _video_rows(served, path)
    except ServiceError as exc:  # the upload's temporary path is not the client's business
        raise type(exc)(str(exc).replace(str(path), "the video")) from exc


def _video_rows(served: ServedModel, path: Path) -> ClipRows:
    if served.encoding is None:
        raise UnusableInput("this model has no frame encoder: send JSON features instead")
    fps = served.package.fps
    try:
        reader = FrameReader(path, fps, max_pixels=served.settings.max_frame_pixels)
    except VideoError as exc:
        raise UnusableInput(str(exc)) from exc
    duration = reader.info.duration_s
    limit = served.settings.max_clip_seconds
    if duration is not None and duration > limit:
        raise TooLarge(f"clip of {duration:.1f} s is over the {limit:g} s limit")
    encoder = served.encoding.encoder
    encode = clip_encoder(encoder)  # a pose encoder tracks its ROI frame to frame
    rows, batch = [], []
    try:
        for frame in reader:
            if frame.t > limit:
                raise TooLarge(f"clip runs past the {limit:g} s limit")
            # Preprocessed at once: a batch of full-size 4K frames would hold 800 MB.
            batch.append(encoder.preprocess.apply(frame.rgb)[0])
            if len(batch) == ENCODE_BATCH:
                rows.append(encode(np.stack(batch)))
                batch = []
        if batch:
            rows.append(encode(np.stack(batch)))
    except (VideoError, FrameError) as exc:  # FrameError: e.g. a 1 × 2000 video
        raise UnusableInput(str(exc)) from exc
    if not rows:
        raise UnusableInput("no frames could be sampled from the video")
    source = {
        "kind": "video",
        "native_fps": reader.info.fps,
        "frames_decoded": reader.decoded,
        "width": reader.info.width,
        "height": reader.info.height,
    }
    return ClipRows(np.concatenate(rows), source)


def features_clip(served: ServedModel, features: np.ndarray, fps: float) -> ClipRows:
    """Rows given at `fps` → rows at the model's fps, by the sampler's timestamp rule."""
    try:
        features = feature_rows(features, dim=served.package.feature_dim)
    except FrameError as exc:
        raise UnusableInput(str(exc)) from exc
    if not len(features):
        raise UnusableInput("features are empty")
    if not (np.isfinite(fps) and fps > 0):
        raise UnusableInput(f"fps must be a positive number, got {fps}")
    duration = len(features) / fps
    if duration > served.settings.max_clip_seconds:
        raise TooLarge(f"clip of {duration:.1f} s is over the limit")
    target = served.package.fps
    if abs(fps - target) < 1e-9:
        return ClipRows(features, {"kind": "features", "fps": fps})
    sampler = FpsSampler(target)
    picked: list[int] = []
    for i in range(len(features)):
        if sampler.offer(i / fps):
            picked += [picked[-1] if picked else i] * sampler.repeat + [i]
    source = {"kind": "features", "fps": fps, "resampled_from": len(features)}
    return ClipRows(features[picked], source)


def classify_rows(served: ServedModel, clip: ClipRows) -> dict[str, Any]:
    """Per-frame scores for every row (as if streamed), and the procedure when there is a
    clip model (blocking: run it in a worker thread). A clip-only package gives only the
    procedure."""
    package = served.package
    scores = served.frames.clip_scores(clip.rows)
    if scores is None:
        result = {"fps": package.fps, "source": source(clip, package.fps)}
    else:
        rule = served.settings.segment_rule
        result = summarize(
            scores, package.classes, package.background_index, package.fps, clip, rule=rule
        )
    if served.clip is not None:
        result["procedure"] = procedure(served.clip, clip.rows)
    return result


def source(clip: ClipRows, fps: float) -> dict[str, Any]:
    """Where the clip came from, with its row count and duration at the model's fps."""
    rows = len(clip.rows)
    return clip.source | {"rows": rows, "duration_s": round(rows / fps, 3)}


MIN_CLIP_ROWS = 2  # clip.onnx's `time` axis starts at 2 (its exported shape)


def procedure(engine: ClipModel, rows: np.ndarray) -> dict[str, Any]:
    """The whole clip's step, task and next step: `rows` [T, D] at the model's fps,
    subsampled to the clip model's max_frames by build_clip, in one forward pass.

    A clip shorter than max_frames goes in unpadded (its graph's time axis is dynamic):
    padding is masked out and takes no position, so the answer is the padded one, and
    a 30-row clip does not pay for a 1,200-row model's padding."""
    size = min(engine.max_frames, max(len(rows), MIN_CLIP_ROWS))
    features, mask = build_clip(rows, size)
    scores = engine.classify(features[None], mask[None])
    return {
        "step": ranked(scores.step[0], engine.steps, PROCEDURE_TOP),
        "task": ranked(scores.task[0], engine.tasks, PROCEDURE_TOP),
        "next_step": ranked(scores.next_step[0], engine.steps, PROCEDURE_TOP),
        "frames": int(mask.sum()),
        "rows": len(rows),
    }


def ranked(probs: np.ndarray, names: tuple[str, ...], top_k: int) -> dict[str, Any]:
    """The best of `names` by `probs` [N], with the top_k best as [name, score] pairs."""
    best = int(probs.argmax())
    order = np.argsort(-probs)[:top_k]
    return {
        "label": names[best],
        "index": best,
        "score": round(float(probs[best]), 6),
        "top": [[names[int(i)], round(float(probs[i]), 6)] for i in order],
    }


def summarize(
    scores: np.ndarray,
    classes: tuple[str, ...],
    background: int | None,
    fps: float,
    clip: ClipRows,
    top_k: int = 3,
    *,
    rule: SegmentRule | None = None,
) -> dict[str, Any]:
    """Per-frame labels, the clip's segments by the segment rule (runtime/segments.py: what
    a live stream of the same rows publishes as events) and its clip label."""
    labels = scores.argmax(1)
    frames = [
        {"t": round(t / fps, 6)} | ranked(row, classes, top_k) for t, row in enumerate(scores)
    ]
    segments = [
        {
            "start": round(seg.start / fps, 6),
            "end": round(seg.end / fps, 6),
            "label": classes[seg.label],
            "index": seg.label,
            "score": round(float(scores[seg.start : seg.end, seg.label].mean()), 6),
            "peak": round(seg.peak, 6),
        }
        for seg in action_segments(scores, rule, background_index=background)
    ]
    return {
        "fps": fps,
        "frames": frames,
        "segments": segments,
        "clip": clip_label(scores, labels, classes, background),
        "source": source(clip, fps),
    }


def clip_label(
    scores: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], background: int | None
) -> dict[str, Any]:
    """The action the clip is about: the class with the most probability mass over the
    frames labelled as some action (background when no frame is); its score is its mean
    probability over the frames labelled with it."""
    action = labels != background if background is not None else np.ones(len(labels), bool)
    if not action.any():
        assert background is not None  # else every frame is an action: a clip has rows
        index = int(background)
        score = float(scores[:, index].mean())
    else:
        mass = scores[action].sum(0)
        if background is not None:
            mass[background] = -1
        index = int(mass.argmax())
        own = labels == index
        score = float(scores[own if own.any() else action, index].mean())
    return {"label": classes[index], "index": index, "score": round(score, 6)}
