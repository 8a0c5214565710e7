"""The composition root's choice of backend: what opens a package's graphs for the service.

GAD_BACKEND=onnx (default): the package's ONNX graphs in onnxruntime (runtime.backends).
GAD_BACKEND=torch: the checkpoint the package came from, in PyTorch (model.torch_engine),
imported only here and only then, so the serving core never names it.
"""

from __future__ import annotations

from runtime.backends import Backend, OnnxBackend
from runtime.errors import ConfigError
from service.settings import Settings


def open_backend(settings: Settings) -> Backend:
    if settings.backend == "onnx":
        return OnnxBackend(settings.providers, settings.threads)
    if settings.checkpoint is None:
        raise ConfigError("GAD_BACKEND=torch needs GAD_CHECKPOINT (a gad train checkpoint)")
    from model.torch_engine import TorchBackend

    return TorchBackend(settings.checkpoint, dtype=settings.torch_dtype)
