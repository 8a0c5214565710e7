"""`gad bench encoder`: frame-encoder throughput, PyTorch and onnxruntime. Torch is imported only inside the handlers."""

from __future__ import annotations

import argparse


def register(
    commands: argparse._SubParsersAction, groups: dict[str, argparse._SubParsersAction]
) -> None:
    """Filled in as the commands land."""
