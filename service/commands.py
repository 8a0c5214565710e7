"""`gad serve` and `gad stream`. No torch: the service and its client never import it."""

from __future__ import annotations

import argparse
from pathlib import Path

from gad.output import emit_table


def register(
    commands: argparse._SubParsersAction, groups: dict[str, argparse._SubParsersAction]
) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the service: WebSocket streams, /classify, /metrics, the demo page",
        description="Serve a model package over HTTP and WebSocket (uvicorn). Settings come "
        "from GAD_* environment variables; these flags override them. With no --model, "
        "the demo model built by `gad demo build` (make setup) is served.",
    )
    serve.add_argument("--model", type=Path, help="package folder (gad export) [GAD_MODEL]")
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

    stream = commands.add_parser(
        "stream",
        help="stream a video file to a running service and print its labels",
        description="Connect to WS /v1/streams/ID, send a video's frames (sampled at the "
        "server's fps, with their timestamps), print each label as it arrives and a summary "
        "with latency percentiles at the end.",
    )
    stream.add_argument("--url", default="ws://127.0.0.1:8000/v1/streams/cli", help="stream URL")
    stream.add_argument("--video", type=Path, required=True, help="video file to send")
    stream.add_argument("--fps", type=float, help="frames per second to send (default: model fps)")
    stream.add_argument("--token", help="API key (or GAD_TOKEN)")
    stream.add_argument("--format", choices=["png", "jpeg"], default="png", help="frame encoding")
    stream.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    stream.add_argument("--realtime", action="store_true", help="pace frames at video time")
    stream.add_argument("--quiet", action="store_true", help="only the summary")
    stream.set_defaults(handler=run_stream)

    bench = groups["bench"].add_parser(
        "service",
        help="concurrent streams against a real gad serve: frames/s, latency, drops",
        description="Start `gad serve` on the model (in-process cache, then Redis when "
        "--redis-url is given), run N concurrent streams of a video's JPEG frames paced at "
        "the model's fps for --seconds each, and print labelled frames/s, server and client "
        "latency percentiles, drops, and the engine's windows/s at the same batch.",
    )
    bench.add_argument("--model", type=Path, help="package (default: the demo model)")
    bench.add_argument("--video", type=Path, help="video to stream (default: a demo test video)")
    bench.add_argument("--streams", type=int, action="append", help="N (default 1 4 16)")
    bench.add_argument("--seconds", type=float, default=20.0, help="per run (default 20)")
    bench.add_argument("--redis-url", help="also run with this Redis as the cache")
    bench.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    bench.add_argument("--out", type=Path, help="also write the table here")
    bench.set_defaults(handler=run_bench_service)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from model.errors import ConfigError
    from model.manifest import MANIFEST_FILE, resolve_package_dir
    from service.app import create_app
    from service.logs import configure
    from service.settings import Settings, default_model_dir

    overrides = {
        "model": args.model,
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
    model = settings.model or default_model_dir()
    if settings.model is None and not (model / MANIFEST_FILE).exists() and not model.exists():
        raise ConfigError(
            f"no --model given and the demo model is not built ({model}): run "
            "`gad demo build` (make setup does) or pass --model DIR from `gad export`"
        )
    resolve_package_dir(model)  # a clear error now rather than at the first request
    configure(settings.log_level, json_lines=settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        ws_max_size=settings.max_message_bytes,
        timeout_graceful_shutdown=10,
    )
    return 0


def run_stream(args: argparse.Namespace) -> int:
    import asyncio
    import json
    import os

    from service.client import print_message, stream_video

    report = asyncio.run(
        stream_video(
            args.url,
            args.video,
            fps=args.fps,
            token=args.token or os.environ.get("GAD_TOKEN"),
            fmt=args.format,
            quality=args.quality,
            realtime=args.realtime,
            on_message=None if args.quiet else print_message,
        )
    )
    print(json.dumps(report.summary(), indent=2))
    return 0 if not report.errors else 1


def run_bench_service(args: argparse.Namespace) -> int:
    import json

    from model.bench_forward import cpu_name
    from service.bench_service import bench_service, render_table
    from service.settings import default_model_dir

    model = args.model or default_model_dir()
    video = args.video
    if video is None:
        root = default_model_dir().parent.parent  # CACHE/demo
        session = json.loads((root / "render" / "split.json").read_text())["test"][0]
        video = root / "render" / "videos" / f"{session}.mp4"
    rows = bench_service(
        model,
        video,
        streams=args.streams or [1, 4, 16],
        seconds=args.seconds,
        redis_url=args.redis_url,
        threads=args.threads,
    )
    table = render_table(rows, package=model, cpu=cpu_name())
    return emit_table(table, args.out)
