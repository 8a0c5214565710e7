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

    load = groups["bench"].add_parser(
        "load",
        help="ramp concurrent streams over two replicas sharing Redis: the knee, p99, "
        "CPU, memory and Redis per stream",
        description="Start --replicas `gad serve` replicas on one Redis (a private "
        "redis-server unless --redis-url), then ramp N concurrent streams (4, 8, 16, 32, "
        "48, 64, ... up to --max-streams; round-robin over the replicas) of a video's JPEG "
        "frames paced at the model's fps, --seconds per step, until p99 server latency "
        "passes --budget-ms or frames are dropped, refused or left unanswered; bisect "
        "once or twice. Prints per step: latency percentiles, drops, machine and "
        "per-stream CPU, RSS and Redis memory per stream; and the knee. Loopback only; "
        "bounded (at most 256 streams, 600 s per step).",
    )
    load.add_argument("--model", type=Path, help="package (default: the demo model)")
    load.add_argument("--video", type=Path, help="video to stream (default: a demo test video)")
    load.add_argument(
        "--streams", type=int, action="append", help="run exactly these N, all of them (repeatable)"
    )
    load.add_argument("--max-streams", type=int, default=96, help="ramp up to (default 96)")
    load.add_argument("--seconds", type=float, default=20.0, help="per step (default 20)")
    load.add_argument(
        "--budget-ms", type=float, default=250.0, help="p99 server latency budget (default 250)"
    )
    load.add_argument("--replicas", type=int, default=2, help="gad serve processes (default 2)")
    load.add_argument("--redis-url", help="use this Redis (default: a private redis-server)")
    load.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    load.add_argument("--out", type=Path, help="also write the table here")
    load.set_defaults(handler=run_bench_load)

    soak = groups["bench"].add_parser(
        "soak",
        help="hold an overload for minutes and sample the server's RSS (memory growth)",
        description="Start one `gad serve` on Redis (a private redis-server unless "
        "--redis-url), stream --streams streams each sending --rate new "
        "frames per second (several times what it can process: drops are counted) for "
        "--minutes, sample the server's RSS every --every seconds, and print the series "
        "and its growth. Bounded: at most 120 minutes.",
    )
    soak.add_argument("--model", type=Path, help="package (default: the demo model)")
    soak.add_argument("--video", type=Path, help="video to stream (default: a demo test video)")
    soak.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    soak.add_argument("--streams", type=int, default=8, help="concurrent streams (default 8)")
    soak.add_argument(
        "--rate", type=float, default=40.0, help="frames/s sent per stream (default 40)"
    )
    soak.add_argument("--every", type=float, default=10.0, help="RSS sample period s (default 10)")
    soak.add_argument("--redis-url", help="use this Redis (default: a private redis-server)")
    soak.add_argument("--out", type=Path, help="also write the result here")
    soak.set_defaults(handler=run_bench_soak)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from runtime.errors import ConfigError
    from runtime.manifest import MANIFEST_FILE, resolve_package_dir
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

    from bench.service import bench_service, render_table
    from runtime.system import cpu_name
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


def _default_video():
    import json

    from service.settings import default_model_dir

    root = default_model_dir().parent.parent  # CACHE/demo
    session = json.loads((root / "render" / "split.json").read_text())["test"][0]
    return root / "render" / "videos" / f"{session}.mp4"


def run_bench_load(args: argparse.Namespace) -> int:
    from bench.load import bench_load, render_load
    from runtime.system import cpu_name
    from service.settings import default_model_dir

    model = args.model or default_model_dir()
    result = bench_load(
        model,
        args.video or _default_video(),
        streams=args.streams,
        max_streams=args.max_streams,
        seconds=args.seconds,
        budget_ms=args.budget_ms,
        replicas=args.replicas,
        redis_url=args.redis_url,
        threads=args.threads,
    )
    return emit_table(render_load(result, package=model, cpu=cpu_name()), args.out)


def run_bench_soak(args: argparse.Namespace) -> int:
    from bench.load import MiB, render_soak, soak
    from service.settings import default_model_dir

    def progress(at: float, rss: int, result) -> None:
        print(
            f"{at:6.0f} s  RSS {rss / MiB:7.1f} MiB  sent {result.sent}  labels "
            f"{result.labels}  dropped {result.dropped}",
            flush=True,
        )

    result = soak(
        args.model or default_model_dir(),
        args.video or _default_video(),
        minutes=args.minutes,
        streams=args.streams,
        rate=args.rate,
        every_s=args.every,
        redis_url=args.redis_url,
        on_sample=progress,
    )
    return emit_table(render_soak(result), args.out)
