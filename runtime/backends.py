"""Where a package's per-frame graphs run: a `Backend` opens a package's head (a window
model's `Engine`) or its step (a streaming package's `StepEngine`). No torch here.

    backend = OnnxBackend(providers=("cuda", "cpu"), threads=2)   # head.onnx / step.onnx
    engine = open_head(backend, package)     # checked against the package's classes and size

The service is handed a backend by its composition root (`gad serve`): `OnnxBackend` by
default, the PyTorch one (`model.torch_engine.TorchBackend`, a checkpoint served directly)
when GAD_BACKEND=torch. So the serving core never names the torch code, even by string.
Whatever the backend, what it opens must answer for the package it serves: `open_head` and
`open_step` refuse an engine with other classes, another feature size or other rings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from runtime.engine import Engine, OnnxEngine
from runtime.errors import ConfigError
from runtime.manifest import ModelPackage
from runtime.sessions import DEFAULT_PROVIDERS
from runtime.stepping import StepEngine


@runtime_checkable
class Backend(Protocol):
    """Opens the graphs of a package that labels frames."""

    @property
    def name(self) -> str:
        """What GAD_BACKEND calls it: onnx, torch."""
        ...

    def head(self, package: ModelPackage) -> Engine:
        """The window head of `package` (its head.onnx, or what it was exported from)."""
        ...

    def step(self, package: ModelPackage) -> StepEngine:
        """The streaming step of `package` (its step.onnx + prefill.onnx, or the checkpoint)."""
        ...


@dataclass(frozen=True)
class OnnxBackend:
    """The package's own ONNX graphs in onnxruntime (what the serving image runs)."""

    providers: Sequence[str] = DEFAULT_PROVIDERS
    threads: int | None = None
    name: str = "onnx"

    def head(self, package: ModelPackage) -> Engine:
        return OnnxEngine.load(package, providers=self.providers, threads=self.threads)

    def step(self, package: ModelPackage) -> StepEngine:
        return StepEngine.load(package, providers=self.providers, threads=self.threads)


def open_head(backend: Backend, package: ModelPackage) -> Engine:
    """`backend`'s head for `package`, refused if it answers for another model."""
    engine = backend.head(package)
    if not isinstance(engine, Engine):  # a plugin's object, unseen by mypy
        raise TypeError(f"{type(engine).__name__} does not implement runtime.engine.Engine")
    if engine.classes != package.classes or engine.feature_dim != package.feature_dim:
        raise ConfigError(
            f"the {backend.name} backend's model ({len(engine.classes)} classes, "
            f"{engine.feature_dim}-d) does not match package {package.name} v{package.version} "
            f"({len(package.classes)} classes, {package.feature_dim}-d)"
        )
    return engine


def open_step(backend: Backend, package: ModelPackage) -> StepEngine:
    """`backend`'s step for `package`, refused if its classes or rings differ."""
    engine = backend.step(package)
    if not isinstance(engine, StepEngine):
        raise TypeError(f"{type(engine).__name__} is not a runtime.stepping.StepEngine")
    if engine.classes != package.classes or engine.ring_shape != package.ring_shape:
        raise ConfigError(
            f"the {backend.name} backend's model ({len(engine.classes)} classes, rings "
            f"{list(engine.ring_shape)}) does not match package {package.name} "
            f"v{package.version} ({len(package.classes)} classes, rings "
            f"{list(package.ring_shape)})"
        )
    return engine
