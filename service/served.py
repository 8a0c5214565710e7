"""What a running service serves: the model package, its frame encoder stage, the object
that labels frames (a `FrameModel`, one kind per package kind), the clip model when the
package has one, the feature cache and the metrics. Built once, at start, by
`ServedModel.build` — the one place that looks at which kind of package this is.

The graphs come from a `runtime.backends.Backend` handed in by the composition root (`gad
serve`): onnxruntime unless it builds another (GAD_BACKEND=torch), so no module here names
the torch code.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from runtime.backends import Backend, OnnxBackend, open_head, open_step
from runtime.encoders import FramePreprocess, open_frame_encoder
from runtime.engine import ClipEngine, ClipModel
from runtime.errors import ConfigError
from runtime.manifest import ModelPackage, read_package
from runtime.pose.roi import Roi
from service.cache import FeatureCache, StreamState, create_cache, redact_url
from service.encoding import Encoded, FrameEncoding, Prepared, open_encoding
from service.events import EventBus, open_sinks
from service.frame_models import FrameModel
from service.frame_models.clip_only import ClipOnly
from service.frame_models.streaming import StreamingStep
from service.frame_models.window import WindowHead
from service.metrics import Metrics
from service.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Infra:
    """What every version of the served model shares in one process: the feature cache
    (a stream's rows outlive a model switch), the metrics and the event bus."""

    cache: FeatureCache
    metrics: Metrics
    events: EventBus  # action events to the sinks and GET /v1/events (service/events/)

    @classmethod
    def build(cls, settings: Settings) -> Infra:
        metrics = Metrics()
        cache = create_cache(
            settings.redis_url,
            dtype=settings.cache_dtype,
            ttl_s=settings.stream_ttl_s,
            timeout_s=settings.cache_timeout_s,
            prefix=settings.redis_prefix,
        )
        secret = settings.event_webhook_secret
        sinks = open_sinks(
            settings.event_sinks,
            webhook_secret=None if secret is None else secret.get_secret_value(),
            timeout_s=settings.event_timeout_s,
        )
        events = EventBus(
            sinks,
            metrics,
            buffer=settings.event_buffer,
            timeout_s=settings.event_timeout_s,
            retry_max_s=settings.event_retry_max_s,
        )
        return cls(cache, metrics, events)

    def start(self) -> None:
        self.events.start()

    async def close(self, drain_s: float) -> None:
        await self.events.close(drain_s)
        await self.cache.close()


@dataclass
class ServedModel:
    """One version of the served model, on the process's shared `Infra`."""

    settings: Settings
    package: ModelPackage
    frames: FrameModel  # labels frames: a window head, a streaming step, or none
    encoding: FrameEncoding | None  # None: the model takes feature rows only
    clip: ClipModel | None  # step / task / next step of whole clips (/classify)
    infra: Infra
    owns_infra: bool = True  # built it: closes it (a version built on shared infra does not)
    started: float = field(default_factory=time.time)

    @property
    def cache(self) -> FeatureCache:
        return self.infra.cache

    @property
    def metrics(self) -> Metrics:
        return self.infra.metrics

    @property
    def events(self) -> EventBus:
        return self.infra.events

    @classmethod
    def build(
        cls,
        settings: Settings,
        backend: Backend | None = None,
        *,
        infra: Infra | None = None,
        folder: Path | None = None,
    ) -> ServedModel:
        """The package at `folder` (None: settings.model), its graphs opened by `backend`
        (None: onnxruntime with the settings' providers and threads), on `infra` (None: its
        own, built here and closed with it)."""
        backend = backend or OnnxBackend(settings.providers, settings.threads)
        if backend.name != settings.backend:
            raise ConfigError(
                f"GAD_BACKEND={settings.backend} but the service was given the {backend.name} "
                "backend: `gad serve` builds the backend the settings name"
            )
        package = read_package(settings.model_dir if folder is None else folder)
        owns_infra = infra is None
        infra = Infra.build(settings) if infra is None else infra
        metrics = infra.metrics
        clip = None
        if package.clip is not None:  # clip.onnx in onnxruntime, whatever the backend
            clip = ClipEngine.load(package, providers=settings.providers, threads=settings.threads)
        frames = _frame_model(settings, package, backend, clip, metrics)
        encoding = None
        if package.encoder is not None:
            encoder = open_frame_encoder(
                package, providers=settings.providers, threads=settings.threads
            )
            encoding = open_encoding(
                encoder,
                max_batch=settings.max_batch,
                max_wait_s=settings.max_wait_ms / 1e3,
                on_batch=metrics.on_encoder_batch,
            )
        served = cls(settings, package, frames, encoding, clip, infra, owns_infra)
        metrics.model_info.info(
            {
                "name": package.name,
                "version": package.version,
                "kind": package.kind,
                "providers": ",".join(frames.providers),
                "encoder": "" if encoding is None else encoding.name,
            }
        )
        where = redact_url(settings.redis_url) if settings.redis_url else "in-process"
        log.info(
            "model %s v%s, %d classes, %g fps, %s; cache %s; event sinks: %s",
            package.name,
            package.version,
            len(package.classes),
            package.fps,
            package.window_text,
            where,
            ", ".join(infra.events.sinks) or "none (GET /v1/events only)",
        )
        return served

    @property
    def streams(self) -> bool:
        """Whether this package labels frames of streams."""
        return self.frames.streams

    @property
    def span(self) -> int:
        """Feature rows a stream's cache keeps."""
        return self.frames.span

    @property
    def preprocess(self) -> FramePreprocess | None:
        """The frame encoder's preprocessing; None: the model takes feature rows only."""
        return None if self.encoding is None else self.encoding.preprocess

    def start(self) -> None:
        self.frames.start()
        if self.encoding is not None:
            self.encoding.start()
        if self.owns_infra:
            self.infra.start()

    async def close(self) -> None:
        """Stops this version's batchers (and the infra, when it built it)."""
        if self.owns_infra:
            await self.infra.events.close(self.settings.event_drain_s)
        await self.frames.close()
        if self.encoding is not None:
            await self.encoding.close()
        if self.owns_infra:
            await self.infra.cache.close()

    def prepare(self, rgb: np.ndarray) -> Prepared:
        """A decoded camera frame → the encoder stage's input (blocking: a worker thread)."""
        if self.encoding is None:
            raise RuntimeError("this model has no encoder")
        return self.encoding.prepare(rgb)

    async def encode(self, prepared: Prepared, track: Roi | None = None) -> Encoded:
        """One prepared frame → its row, the stream's encoder state for its next frame and
        what the encoder saw, batched across streams (service/encoding.py)."""
        if self.encoding is None:
            raise RuntimeError("this model has no encoder")
        return await self.encoding.encode(prepared, track)

    async def scores(self, state: StreamState) -> np.ndarray:
        """Class probabilities for the newest row of a stream."""
        return await self.frames.scores(state)

    def forget(self, stream: str) -> None:
        self.frames.forget(stream)

    def describe(self) -> dict[str, Any]:
        """The model as `/v1/models` and each stream's `ready` describe it (fixed at build)."""
        return dict(self._described)

    @cached_property
    def _described(self) -> dict[str, Any]:
        return {
            "name": self.package.name,
            "version": self.package.version,
            "kind": self.package.kind,
            "classes": list(self.package.classes),
            "background_index": self.package.background_index,
            "fps": self.package.fps,
            "feature_dim": self.package.feature_dim,
            "window": self.package.window_json,
            **self.frames.describe(),
            "encoder": None if self.encoding is None else self.encoding.name,
            "accepts": ["features"] + (["image"] if self.encoding is not None else []),
            "providers": list(self.frames.providers),
            "streams": self.streams,
            "metrics": _headline(self.package.metrics),
            "clip": None
            if self.clip is None
            else {
                "steps": list(self.clip.steps),
                "tasks": list(self.clip.tasks),
                "max_frames": self.clip.max_frames,
                "providers": list(self.clip.providers),
            },
        }


def _frame_model(
    settings: Settings,
    package: ModelPackage,
    backend: Backend,
    clip: ClipModel | None,
    metrics: Metrics,
) -> FrameModel:
    """The one decision on the package kind: a streaming step, a window head, or clips only
    (read_package refuses a package with neither a head, a step nor a clip model)."""
    max_batch, max_wait_s = settings.max_batch, settings.max_wait_ms / 1e3
    if package.is_streaming:
        return StreamingStep(
            open_step(backend, package),
            max_batch=max_batch,
            max_wait_s=max_wait_s,
            max_streams=settings.max_streams,
            replay_rows=settings.stream_replay_rows,
            on_batch=metrics.on_batch,
        )
    if package.has_head:
        return WindowHead(
            open_head(backend, package),
            package.window,
            max_batch=max_batch,
            max_wait_s=max_wait_s,
            on_batch=metrics.on_batch,
        )
    assert clip is not None
    return ClipOnly(clip)


def _headline(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    if not metrics:
        return None
    keys = ("map", "cmap", "frame_accuracy")
    return {k: metrics[k] for k in keys if k in metrics}
