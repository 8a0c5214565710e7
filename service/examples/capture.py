"""Where an example's rows come from, computed by the served model's own encoder stage:

- a clip: decoded, sampled at the model's fps and encoded as `/v1/classify` does it
  (service/classify.py `video_rows`: a pose encoder tracks its ROI through the clip), so
  training sees exactly the rows serving sees;
- a live stream: the rows it already computed, read from the feature cache without
  re-encoding (its window: the last `span` rows; `FeatureCache.peek` takes no ownership,
  the stream goes on undisturbed).

And the one check of what a pose model's rows say: in how many a person was found.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtime.manifest import POSE_KIND
from runtime.pose_features import PRESENT_THRESHOLD
from service.classify import video_rows
from service.errors import Gone, NotFound, UnusableInput
from service.examples.store import ExampleSet
from service.served import ServedModel
from service.settings import Settings


def example_set(served: ServedModel, settings: Settings, tenant: str | None) -> ExampleSet:
    """The caller's examples for the served model."""
    package = served.package
    background = (
        package.classes[package.background_index]
        if package.background_index is not None
        else "background"
    )
    encoding = served.encoding
    return ExampleSet.at(
        settings.data_dir,
        tenant,
        package.name,
        fps=package.fps,
        feature_dim=package.feature_dim,
        encoder=None if encoding is None else encoding.encoder.describe(),
        encoder_name=None if encoding is None else encoding.name,
        background=background,
        limit=settings.max_examples,
    )


def model_info(served: ServedModel) -> dict[str, Any]:
    """What an example records of the model whose encoder made its rows."""
    package = served.package
    return {
        "model": {"name": package.name, "version": package.version},
        "encoder": None if served.encoding is None else served.encoding.name,
    }


def clip_rows(served: ServedModel, path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """A video file's rows at the model's fps and where they came from (blocking)."""
    if served.encoding is None:
        raise UnusableInput(
            "this model has no frame encoder (it takes feature rows): examples come from "
            "its streams only, POST /v1/streams/ID/examples"
        )
    clip = video_rows(served, path)
    return clip.rows, clip.source


def person_rows(served: ServedModel, rows: np.ndarray) -> np.ndarray | None:
    """[T] bool, the rows where the pose encoder found a person; None: not a pose model."""
    encoder = served.package.encoder
    if encoder is None or encoder.kind != POSE_KIND:
        return None
    found: np.ndarray = rows[:, -1] >= PRESENT_THRESHOLD  # the person-present probability
    return found


def check_person(
    served: ServedModel, rows: np.ndarray, labels: list[str], background: str
) -> int | None:
    """Rows with a person (None: not a pose model); UnusableInput when an action was
    labelled and no frame of the labelled time shows anyone (a background example of an
    empty room is fine)."""
    found = person_rows(served, rows)
    if found is None:
        return None
    action = np.array([label != background for label in labels])
    if action.any() and not found[action].any():
        raise UnusableInput(
            f"no person found in any of the {int(action.sum())} labelled frames: the pose "
            "model sees nobody there (is the person in view, whole and big enough?)"
        )
    return int(found.sum())


@dataclass(frozen=True)
class StreamRows:
    rows: np.ndarray  # [end_row - start_row, D]
    source: dict[str, Any]


async def stream_rows(
    served: ServedModel, tenant: str | None, stream_id: str, start_row: int, end_row: int
) -> StreamRows:
    """Rows start_row ..< end_row of the caller's stream, as the feature cache holds them."""
    key = f"{tenant}/{stream_id}" if tenant else stream_id  # as service/api/ws.py keys it
    state = await served.cache.peek(key)
    if state is None:
        raise NotFound(
            f"no stream {stream_id!r} of this key in the feature cache (ended, expired after "
            f"{served.cache.ttl_s:g} s idle, or never opened)"
        )
    total, held = state.total_rows, len(state.rows)
    first = total - held
    if end_row > total:
        raise UnusableInput(
            f"rows {start_row}..{end_row - 1} are not all computed yet: the stream has rows "
            f"0..{total - 1}"
        )
    if start_row < first:
        raise Gone(
            f"rows {start_row}..{first - 1} have left the stream's window: it keeps the last "
            f"{state.span} rows ({state.span / served.package.fps:g} s), now rows "
            f"{first}..{total - 1}; save an example sooner after it ends, or a shorter one"
        )
    rows = np.array(state.rows[start_row - first : end_row - first], np.float32)
    source = {"kind": "stream", "stream": stream_id, "start_row": start_row, "end_row": end_row}
    return StreamRows(rows, source)
