"""`gad serve`: the service over HTTP and WebSocket (torch-free, like the service):
settings from GAD_* and the flags → create_app → uvicorn.

    gad serve                                   the pose demo (gad demo build; make setup)
    gad serve --demo render                     the render demo (gad demo build --kind render)
    gad serve --model models/gad --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gad.subcommands import Subcommands


def register(commands: Subcommands) -> None:
    commands.add(
        "serve",
        build,
        help="run the service: WebSocket streams, /classify, /metrics, the demo page",
        description="Serve a model package over HTTP and WebSocket (uvicorn). Settings come "
        "from GAD_* environment variables; these flags override them. With neither --model "
        "nor GAD_MODEL, the pose demo built by `gad demo build` (make setup) is served.",
    )


def build(serve: argparse.ArgumentParser) -> None:
    from gad.demo import KINDS, SERVED_KIND

    which = serve.add_mutually_exclusive_group()
    which.add_argument("--model", type=Path, help="package folder (gad export) [GAD_MODEL]")
    which.add_argument(
        "--demo",
        choices=KINDS,
        help=f"serve a demo model from the cache (default {SERVED_KIND} when there is no "
        "--model or GAD_MODEL; `gad demo build --kind KIND` makes it)",
    )
    serve.add_argument("--host", help="bind address (default 127.0.0.1) [GAD_HOST]")
    serve.add_argument("--port", type=int, help="port (default 8000) [GAD_PORT]")
    serve.add_argument("--redis-url", help="share streams through Redis [GAD_REDIS_URL]")
    serve.add_argument(
        "--providers", help="onnxruntime providers, best first (default tensorrt,cuda,cpu)"
    )
    serve.add_argument("--threads", type=int, help="onnxruntime threads [GAD_THREADS]")
    serve.add_argument("--max-batch", type=int, help="windows per engine batch [GAD_MAX_BATCH]")
    serve.add_argument("--max-streams", type=int, help="streams per process [GAD_MAX_STREAMS]")
    serve.add_argument(
        "--log-format", choices=["json", "text"], help="log lines (default json) [GAD_LOG_JSON]"
    )
    serve.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """The composition root: the settings, the model (the served demo when none is named)
    and the backend, handed to the service."""
    from gad.backends import open_backend
    from gad.demo import SERVED_KIND
    from service.server import serve
    from service.settings import Settings

    overrides = {
        "model": args.model or (args.demo and demo_package(args.demo)),
        "host": args.host,
        "port": args.port,
        "redis_url": args.redis_url,
        "providers": args.providers,
        "threads": args.threads,
        "max_batch": args.max_batch,
        "max_streams": args.max_streams,
        "log_json": None if args.log_format is None else args.log_format == "json",
    }
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    if settings.model is None:  # neither --model, --demo nor GAD_MODEL: the served demo
        settings = settings.model_copy(update={"model": demo_package(SERVED_KIND)})
    serve(settings, open_backend(settings))
    return 0


def demo_package(kind: str) -> Path:
    from gad.demo import demo_root, is_built, package_dir
    from runtime.errors import ConfigError

    root = demo_root(kind=kind)
    if not is_built(root, kind=kind):
        raise ConfigError(
            f"the {kind} demo model is not built ({root}): run `gad demo build --kind {kind}` "
            "(make setup builds both demos), or pass --model DIR from `gad export`"
        )
    return package_dir(root, kind=kind)
