"""`gad stream`: send a video file to a running service and print its labels
(service/client.py; no torch).

    gad stream --video clip.mp4 --url ws://127.0.0.1:8000/v1/streams/cli --realtime

A file sent as fast as the server takes it streams `lossless` (every frame labelled, the
server's backpressure sets the pace); with --realtime it plays as a camera and streams `live`
(frames the server cannot keep up with are dropped). --delivery overrides either.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from gad.subcommands import Subcommands


def register(commands: Subcommands) -> None:
    commands.add(
        "stream",
        build,
        help="stream a video file to a running service and print its labels",
        description="Connect to WS /v1/streams/ID, send a video's frames (sampled at the "
        "server's fps, with their timestamps), print each label as it arrives and a summary "
        "with latency percentiles at the end.",
    )


def build(stream: argparse.ArgumentParser) -> None:
    stream.add_argument("--url", default="ws://127.0.0.1:8000/v1/streams/cli", help="stream URL")
    stream.add_argument("--video", type=Path, required=True, help="video file to send")
    stream.add_argument("--fps", type=float, help="frames per second to send (default: model fps)")
    stream.add_argument("--token", help="API key (or GAD_TOKEN)")
    stream.add_argument("--format", choices=["png", "jpeg"], default="png", help="frame encoding")
    stream.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    stream.add_argument("--realtime", action="store_true", help="pace frames at video time")
    stream.add_argument(
        "--delivery",
        choices=["live", "lossless"],
        help="live: drop frames the server cannot keep up with (latency stays flat); "
        "lossless: every frame labelled, the server slows the sending "
        "(default: live with --realtime, else lossless)",
    )
    stream.add_argument("--quiet", action="store_true", help="only the summary")
    stream.set_defaults(handler=run_stream)


def run_stream(args: argparse.Namespace) -> int:
    import asyncio

    from service.client import stream_video

    report = asyncio.run(
        stream_video(
            args.url,
            args.video,
            fps=args.fps,
            token=args.token or os.environ.get("GAD_TOKEN"),
            fmt=args.format,
            quality=args.quality,
            realtime=args.realtime,
            delivery=args.delivery,
            on_message=None if args.quiet else print_message,
        )
    )
    print(json.dumps(report.summary(), indent=2))
    return 0 if not report.errors else 1


def print_message(message: dict[str, Any]) -> None:
    """One line per label (and per error or drop notice) as it arrives."""
    kind = message.get("type")
    if kind == "label":
        top = ", ".join(f"{name} {score:.2f}" for name, score in message.get("top", [])[1:])
        flag = " (carried)" if message.get("carried") else ""
        print(
            f"seq {message['seq']:>5}  t {message.get('t', 0):7.2f}s  {message['label']:<24} "
            f"{message['score']:.2f}  {message['latency_ms']:7.1f} ms{flag}  | {top}"
        )
    elif kind in ("error", "dropped"):
        print(f"{kind}: {json.dumps(message)}")
