"""`gad info`: what a checkpoint holds, from its checkpoint.json (no torch)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gad.subcommands import Subcommands


def register(commands: Subcommands) -> None:
    commands.add(
        "info",
        build,
        help="show what a checkpoint holds",
        description="Print a checkpoint's kind, backbone (and fingerprint), feature size, "
        "classes, LoRA settings, parameter counts and files. Reads only checkpoint.json: "
        "no torch, no weights loaded.",
    )


def build(info: argparse.ArgumentParser) -> None:
    info.add_argument("checkpoint", type=Path, help="checkpoint folder (written by gad train)")
    info.add_argument("--json", action="store_true", help="print checkpoint.json as JSON")
    info.set_defaults(handler=run_info)


def run_info(args: argparse.Namespace) -> int:
    from model.checkpoint_info import describe_checkpoint, read_checkpoint_info

    info = read_checkpoint_info(args.checkpoint)
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
        return 0
    rows = describe_checkpoint(info)
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0
