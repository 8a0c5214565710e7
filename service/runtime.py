"""What a running service holds: the model package, its engine and encoder behind
micro-batchers, its clip model (when the package has one), the feature cache and the
metrics. Built once from the settings, at start.

The per-frame engine is a runtime.engine.Engine: OnnxEngine (head.onnx), or with
GAD_BACKEND=torch model.torch_engine.TorchEngine, imported by name only then (the import
rules keep the service off torch and model/). A streaming package has a step engine
instead (runtime/stepping.py, service/stepping.py): one step per frame per stream against
K/V rings kept here, batched across streams the same way.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runtime.encoders import FrameEncoderKind, FramePreprocess, open_frame_encoder
from runtime.engine import ClipEngine, ClipModel, Engine, OnnxEngine
from runtime.errors import ConfigError
from runtime.manifest import ModelPackage, read_package
from runtime.pose.encoder import PoseFrameEncoder
from runtime.pose.roi import Roi, rois_from_array, rois_to_array
from runtime.stepping import StepEngine
from runtime.windowing import WindowSpec, build_window
from service.batcher import MicroBatcher
from service.cache import FeatureCache, create_cache, redact_url
from service.metrics import Metrics
from service.settings import Settings
from service.stepping import Stepper

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    package: ModelPackage
    engine: Engine | None  # None: a clip-only package
    encoder: FrameEncoderKind | None
    cache: FeatureCache
    metrics: Metrics
    head: MicroBatcher | None
    frames: MicroBatcher | None
    clip: ClipModel | None = None  # step / task / next step of whole clips (/classify)
    stepper: Stepper | None = None  # a streaming package's steps and per-stream rings
    started: float = field(default_factory=time.time)

    @classmethod
    def build(cls, settings: Settings, *, model: Path) -> Runtime:
        metrics = Metrics()
        package = read_package(model)
        engine = load_engine(settings, package) if package.has_head else None
        encoder = None
        if package.encoder is not None:
            encoder = open_frame_encoder(
                package, providers=settings.providers, threads=settings.threads
            )
        stepper = None
        if package.is_streaming:
            stepper = Stepper(
                load_step_engine(settings, package),
                max_batch=settings.max_batch,
                max_wait_s=settings.max_wait_ms / 1e3,
                max_streams=settings.max_streams,
                replay_rows=settings.stream_replay_rows,
                on_batch=metrics.on_batch,
            )
        clip: ClipModel | None = None
        if package.clip is not None:  # clip.onnx in onnxruntime, whatever the head's backend
            clip = ClipEngine.load(package, providers=settings.providers, threads=settings.threads)
        cache = create_cache(
            settings.redis_url,
            dtype=settings.cache_dtype,
            ttl_s=settings.stream_ttl_s,
            timeout_s=settings.cache_timeout_s,
            prefix=settings.redis_prefix,
        )
        head = (
            None
            if engine is None
            else MicroBatcher(
                engine.classify,
                max_batch=settings.max_batch,
                max_wait_s=settings.max_wait_ms / 1e3,
                feature_dim=package.feature_dim,
                on_batch=metrics.on_batch,
            )
        )
        frames = None
        if isinstance(encoder, PoseFrameEncoder):  # each item a frame and its stream's ROI
            frames = MicroBatcher(
                _tracked_batch(encoder),
                max_batch=settings.max_batch,
                max_wait_s=settings.max_wait_ms / 1e3,
                collate=lambda items: (
                    np.stack([i[0] for i in items]),
                    np.stack([i[1] for i in items]),
                ),
                validate=_tracked_item(encoder),
                on_batch=metrics.on_encoder_batch,
            )
        elif encoder is not None:
            frames = MicroBatcher(
                encoder.encode_pixels,
                max_batch=settings.max_batch,
                max_wait_s=settings.max_wait_ms / 1e3,
                collate=lambda items: (np.stack([item[0] for item in items]),),
                validate=encoder.check_pixels,
                on_batch=metrics.on_encoder_batch,
            )
        metrics.model_info.info(
            {
                "name": package.name,
                "version": package.version,
                "kind": str(package.manifest.get("kind")),
                "providers": ",".join(_providers(engine or stepper, clip)),
                "encoder": encoder.name if encoder else "",
            }
        )
        where = redact_url(settings.redis_url) if settings.redis_url else "in-process"
        log.info(
            "model %s v%s, %d classes, %g fps, %s; cache %s",
            package.name,
            package.version,
            len(package.classes),
            package.fps,
            package.window_text,
            where,
        )
        return cls(settings, package, engine, encoder, cache, metrics, head, frames, clip, stepper)

    @property
    def window(self) -> WindowSpec:
        """The rows a stream's cache keeps: the head's window, or a streaming package's
        replay rows (what rebuilds its K/V rings on another replica)."""
        if self.stepper is not None:
            return WindowSpec(0, self.stepper.replay_rows, 1)
        return self.package.window

    @property
    def streams(self) -> bool:
        """Whether this package labels frames of streams (it has a head or a step)."""
        return self.engine is not None or self.stepper is not None

    @property
    def preprocess(self) -> FramePreprocess | None:
        """The frame encoder's preprocessing; None: the model takes feature rows only."""
        return None if self.encoder is None else self.encoder.preprocess

    def start(self) -> None:
        if self.stepper is not None:
            self.stepper.start()
        if self.head is not None:
            self.head.start()
        if self.frames is not None:
            self.frames.start()

    async def close(self) -> None:
        if self.stepper is not None:
            await self.stepper.close()
        if self.head is not None:
            await self.head.close()
        if self.frames is not None:
            await self.frames.close()
        await self.cache.close()

    async def encode(
        self, pixels: np.ndarray, track: Roi | None = None
    ) -> tuple[np.ndarray, Roi | None]:
        """One preprocessed frame → its feature row, batched across streams, and the
        stream's tracker state for its next frame. A pose encoder's state is the ROI of
        the person it follows (`track` the previous frame's, None: run the detector; the
        next is None when nobody is in view); an image encoder keeps none. (Decoding and
        preprocessing run in the caller's worker thread, off the loop.)"""
        if self.frames is None:
            raise RuntimeError("this model has no encoder")
        if not isinstance(self.encoder, PoseFrameEncoder):
            return await self.frames.submit(pixels), None
        out = await self.frames.submit(pixels, rois_to_array([track])[0])
        dim = self.encoder.feature_dim
        (roi,) = rois_from_array(out[None, dim:])
        return out[:dim].astype(np.float32), roi

    async def scores(
        self, rows: np.ndarray, t: int, *, stream: str | None = None, total: int | None = None
    ) -> np.ndarray:
        """Class probabilities for frame t of `rows` (its window built the one way). A
        streaming package steps `stream`'s rings instead: `rows` are its latest rows, the
        last one its row number `total` - 1 (rows[t] for t = len(rows) - 1)."""
        if self.stepper is not None:
            if stream is None or total is None or t != len(rows) - 1:
                raise RuntimeError("a streaming package scores a stream's newest row only")
            return await self.stepper.scores(stream, rows, total)
        if self.head is None:
            raise RuntimeError("this model has no per-frame head")
        window, mask = build_window(rows, t, self.window)
        return await self.head.submit(window, mask)

    def forget(self, stream: str) -> None:
        """A stream ended: a streaming package drops its rings (a window model keeps nothing)."""
        if self.stepper is not None:
            self.stepper.forget(stream)

    def describe(self) -> dict[str, Any]:
        m = self.package.manifest
        return {
            "name": self.package.name,
            "version": self.package.version,
            "kind": m.get("kind"),
            "classes": list(self.package.classes),
            "background_index": self.package.background_index,
            "fps": self.package.fps,
            "feature_dim": self.package.feature_dim,
            "window": m["window"],
            "attention": "streaming" if self.stepper is not None else "window",
            "step": None
            if self.stepper is None
            else {"window": self.stepper.engine.window, "replay_rows": self.stepper.replay_rows},
            "encoder": None if self.encoder is None else self.encoder.name,
            "accepts": ["features"] + (["image"] if self.encoder is not None else []),
            "providers": list(_providers(self.engine or self.stepper, self.clip)),
            "streams": self.streams,
            "metrics": _headline(m.get("metrics")),
            "clip": None
            if self.clip is None
            else {
                "steps": list(self.clip.steps),
                "tasks": list(self.clip.tasks),
                "max_frames": self.clip.max_frames,
                "providers": list(self.clip.providers),
            },
        }


def _tracked_batch(encoder: PoseFrameEncoder) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The pose encoder's batch for the micro-batcher: frames [B, S, S, 3] and their
    streams' ROIs [B, 4] → [B, D + 4], each row followed by its stream's next ROI (one
    array, so each caller gets its own row of it)."""

    def run(pixels: np.ndarray, rois: np.ndarray) -> np.ndarray:
        rows, following = encoder.encode_pixels_tracked(pixels, rois)
        return np.concatenate([rows.astype(np.float64), following], axis=1)

    return run


def _tracked_item(encoder: PoseFrameEncoder) -> Callable[..., tuple[np.ndarray, ...]]:
    """One stream's item: a letterboxed frame and its ROI (float [4], NaN: none)."""

    def check(pixels: np.ndarray, roi: np.ndarray) -> tuple[np.ndarray, ...]:
        rois_from_array(np.asarray(roi)[None])  # a bad ROI fails its caller, not the batch
        return (*encoder.check_pixels(pixels), np.asarray(roi, dtype=np.float64))

    return check


def _torch_backend(settings: Settings) -> tuple[Path, Any]:
    """GAD_CHECKPOINT and model.torch_engine, imported by name only now, so the import rules
    (and the serving image) never see torch here."""
    if settings.checkpoint is None:
        raise ConfigError("GAD_BACKEND=torch needs GAD_CHECKPOINT (a gad train checkpoint)")
    return settings.checkpoint, importlib.import_module("model.torch_engine")


def load_engine(settings: Settings, package: ModelPackage) -> Engine:
    """head.onnx in onnxruntime, or (backend=torch) the checkpoint the package came from,
    in PyTorch — imported only then: the ONNX path never loads torch."""
    if settings.backend == "onnx":
        return OnnxEngine.load(package, providers=settings.providers, threads=settings.threads)
    checkpoint, torch_engine = _torch_backend(settings)
    engine = torch_engine.TorchEngine.load(checkpoint, dtype=settings.torch_dtype)
    if not isinstance(engine, Engine):  # what mypy cannot see through import_module
        raise TypeError(f"{type(engine).__name__} does not implement runtime.engine.Engine")
    if engine.classes != package.classes or engine.feature_dim != package.feature_dim:
        raise ConfigError(
            f"checkpoint {settings.checkpoint} ({len(engine.classes)} classes, "
            f"{engine.feature_dim}-d) does not match package {package.name} v{package.version} "
            f"({len(package.classes)} classes, {package.feature_dim}-d)"
        )
    return engine


def load_step_engine(settings: Settings, package: ModelPackage) -> StepEngine:
    """step.onnx in onnxruntime, or (backend=torch) the streaming checkpoint in PyTorch."""
    if settings.backend == "onnx":
        return StepEngine.load(package, providers=settings.providers, threads=settings.threads)
    checkpoint, torch_engine = _torch_backend(settings)
    engine = torch_engine.TorchStepEngine.load_checkpoint(checkpoint, dtype=settings.torch_dtype)
    if not isinstance(engine, StepEngine):
        raise TypeError(f"{type(engine).__name__} is not a runtime.stepping.StepEngine")
    if engine.classes != package.classes or engine.ring_shape != package.ring_shape:
        raise ConfigError(
            f"checkpoint {settings.checkpoint} ({len(engine.classes)} classes, rings "
            f"{list(engine.ring_shape)}) does not match package {package.name} "
            f"v{package.version} ({len(package.classes)} classes, rings "
            f"{list(package.ring_shape)})"
        )
    return engine


def _providers(engine: Engine | Stepper | None, clip: ClipModel | None) -> tuple[str, ...]:
    """Where the package runs: its head's (or step's) providers, or a clip-only package's
    clip model's."""
    model = engine or clip
    assert model is not None  # read_package refuses a package with neither
    return model.providers


def _headline(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    if not metrics:
        return None
    keys = ("map", "cmap", "frame_accuracy")
    return {k: metrics[k] for k in keys if k in metrics}
