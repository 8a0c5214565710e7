"""`gad export` and `gad bench engine`: the model package and the engine's benchmarks. Torch is imported only inside the handlers."""

from __future__ import annotations

import argparse


def register(
    commands: argparse._SubParsersAction, groups: dict[str, argparse._SubParsersAction]
) -> None:
    """Filled in as the commands land."""
