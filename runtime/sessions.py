"""onnxruntime sessions with provider fallback, shared by the engine and the frame encoder.
Torch-free.

Providers are tried in the order given (TensorRT → CUDA → CPU by default); one that this
onnxruntime build lacks, or that fails to initialise (no driver, missing CUDA libraries),
is skipped with a logged reason, so a GPU image on a CPU host still serves.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from runtime.errors import GADError

log = logging.getLogger(__name__)

PROVIDERS = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
DEFAULT_PROVIDERS = ("tensorrt", "cuda", "cpu")


def open_session(
    path: Path, providers: Sequence[str], threads: int | None
) -> tuple[object, tuple[str, ...], dict[str, str]]:
    """An onnxruntime session on the best available provider: (session, active, skipped)."""
    import onnxruntime as ort

    wanted, skipped = _provider_names(providers, ort.get_available_providers())
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3  # our log says what fell back and why
    session = ort.InferenceSession(str(path), sess_options=options, providers=list(wanted))
    active = tuple(session.get_providers())
    for name in wanted:
        if name not in active:
            skipped[name] = "failed to initialise (driver or CUDA/TensorRT libraries)"
    for name, reason in skipped.items():
        log.warning("onnxruntime provider %s not used for %s: %s", name, Path(path).name, reason)
    return session, active, skipped


def _provider_names(
    requested: Sequence[str], available: Sequence[str]
) -> tuple[list[str], dict[str, str]]:
    wanted, skipped = [], {}
    for item in requested:
        name = PROVIDERS.get(item.lower(), item)
        if name not in PROVIDERS.values():
            raise GADError(
                f"unknown onnxruntime provider {item!r}: use {', '.join(PROVIDERS)} "
                "(or a full ...ExecutionProvider name)"
            )
        if name in available:
            wanted.append(name)
        else:
            skipped[name] = "not in this onnxruntime build (onnxruntime-gpu has CUDA/TensorRT)"
    if not wanted:
        raise GADError(
            f"none of the providers {list(requested)} is available; this onnxruntime has "
            f"{list(available)}"
        )
    return wanted, skipped
