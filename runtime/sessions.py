"""onnxruntime sessions with provider fallback, shared by the engine and the frame encoder.
Torch-free.

Providers are tried in the order given (TensorRT → CUDA → CPU by default), so a GPU image
on a CPU host still serves. One that this onnxruntime build lacks (the CPU wheel has no
CUDA or TensorRT) is skipped quietly, at DEBUG: nothing is wrong. One that the build has but
that fails to initialise (no driver, missing CUDA libraries) is a WARNING, once per process
and provider: that is a GPU host not using its GPU. What runs is said once per process, at
INFO, not once per graph.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from runtime.errors import GADError

log = logging.getLogger(__name__)

# What this process has already said: the providers that ran (INFO), the ones that failed
# to initialise (WARNING). A server opens several graphs; each says its piece once.
_announced: set[tuple[str, ...]] = set()
_warned: set[str] = set()

PROVIDERS = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
DEFAULT_PROVIDERS = ("tensorrt", "cuda", "cpu")
# Why a provider was skipped (the values of open_session's `skipped`).
NOT_IN_BUILD = "not in this onnxruntime build (onnxruntime-gpu has CUDA/TensorRT)"
FAILED = "failed to initialise (driver or CUDA/TensorRT libraries)"


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
    graph = Path(path).name
    for name, reason in skipped.items():  # not in this build: expected, not a problem
        log.debug("onnxruntime provider %s not used for %s: %s", name, graph, reason)
    for name in wanted:
        if name not in active:
            skipped[name] = FAILED
            if name not in _warned:
                _warned.add(name)
                log.warning(
                    "onnxruntime provider %s not used (first for %s): %s", name, graph, FAILED
                )
    runs = tuple(name for name in active if name in wanted)
    if runs not in _announced:
        _announced.add(runs)
        missing = [short(name) for name in skipped if skipped[name] == NOT_IN_BUILD]
        note = f" ({', '.join(missing)} not in this onnxruntime build)" if missing else ""
        log.info("onnxruntime runs on %s%s", ", ".join(short(n) for n in runs), note)
    return session, active, skipped


def short(provider: str) -> str:
    """CUDAExecutionProvider → CUDA."""
    return provider.removesuffix("ExecutionProvider").replace("Tensorrt", "TensorRT")


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
            skipped[name] = NOT_IN_BUILD
    if not wanted:
        raise GADError(
            f"none of the providers {list(requested)} is available; this onnxruntime has "
            f"{list(available)}"
        )
    return wanted, skipped
