"""`gad stream`: send a video file or a camera to a running service and print its labels
(service/client.py, service/gateway/; no torch).

    gad stream --source clip.mp4 --url ws://127.0.0.1:8000/v1/streams/cli --realtime
    gad stream --source rtsp://cam-3.local/stream1 --url ws://127.0.0.1:8000/v1/streams/cam3

A camera (rtsp(s)://, http(s)://, /dev/videoN, an index) streams `live` through the
gateway's runner until Ctrl-C (or --duration): sampled at the model's fps on the camera's
own timestamps, JPEG, and reconnected both ways. --video is the old name of --source.

A file sent as fast as the server takes it streams `lossless` (every frame labelled, the
server's backpressure sets the pace); with --realtime it plays as a camera and streams `live`
(frames the server cannot keep up with are dropped). --delivery overrides either. A file's
frames go as JPEG (quality 80) at most 640 pixels wide (--send-width, --jpeg-quality);
`--format png` sends them lossless at full size (the labels of /classify on the same file).

No server, a wrong URL, a refused key: one line with a hint (gad/cli.py), exit status 1.
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
        help="stream a video file or a camera to a running service and print its labels",
        description="Connect to WS /v1/streams/ID, send a video's frames (sampled at the "
        "server's fps, with their timestamps), print each label as it arrives and a summary "
        "with latency percentiles at the end.",
    )


def build(stream: argparse.ArgumentParser) -> None:
    from service.client import DEFAULT_JPEG_QUALITY, DEFAULT_SEND_WIDTH, DEFAULT_URL

    stream.add_argument(
        "--url",
        default=DEFAULT_URL,
        help=f"stream URL, ws://HOST:PORT/v1/streams/ID ({DEFAULT_URL})",
    )
    source = stream.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--source",
        help="a video file, rtsp(s)://…, http(s)://… (MJPEG or any stream FFmpeg reads), "
        "a V4L2 device (/dev/video0) or a camera index",
    )
    source.add_argument("--video", type=Path, help="a video file (the old name of --source)")
    stream.add_argument("--fps", type=float, help="frames per second to send (default: model fps)")
    stream.add_argument("--token", help="API key (or GAD_TOKEN)")
    stream.add_argument(
        "--format",
        choices=["png", "jpeg"],
        default="jpeg",
        help="frame encoding (default jpeg; png: lossless, a file only)",
    )
    stream.add_argument(
        "--jpeg-quality",
        "--quality",
        dest="quality",
        type=int,
        default=DEFAULT_JPEG_QUALITY,
        metavar="Q",
        help=f"JPEG quality, 1-100 (default {DEFAULT_JPEG_QUALITY})",
    )
    stream.add_argument(
        "--send-width",
        type=int,
        metavar="PIXELS",
        help=f"a file: scale frames down to this width, keeping their aspect, never up "
        f"(default {DEFAULT_SEND_WIDTH} for JPEG; full size for PNG; 0: full size)",
    )
    stream.add_argument("--realtime", action="store_true", help="pace frames at video time")
    stream.add_argument(
        "--delivery",
        choices=["live", "lossless"],
        help="live: drop frames the server cannot keep up with (latency stays flat); "
        "lossless: every frame labelled, the server slows the sending "
        "(default: live with --realtime, else lossless)",
    )
    stream.add_argument("--duration", type=float, help="a camera: stop after this many seconds")
    stream.add_argument("--quiet", action="store_true", help="only the summary")
    stream.set_defaults(handler=run_stream)


def run_stream(args: argparse.Namespace) -> int:
    import asyncio

    from runtime.sources import parse_source
    from service.client import stream_video

    spec = parse_source(str(args.video or args.source))
    token = args.token or os.environ.get("GAD_TOKEN")
    on_message = None if args.quiet else print_message
    if not 1 <= args.quality <= 100:
        stream_error(f"--jpeg-quality {args.quality}: use 1 to 100")
    if args.send_width is not None and args.send_width < 0:
        stream_error(f"--send-width {args.send_width}: use a width in pixels, or 0 (full size)")
    if spec.live:
        from service.gateway.single import stream_camera

        if args.format == "png" or args.delivery == "lossless":
            stream_error(
                "a camera streams live JPEG frames (no --format png / --delivery lossless)"
            )
        if args.send_width is not None:
            stream_error("--send-width is for a file (a camera's frames: 960 pixels at most)")
        # The camera's runner retries forever; a service that is not there, a wrong URL or a
        # refused key fail here first, in one line (gad/cli.py).
        asyncio.run(check_service(args.url, token))
        status = asyncio.run(
            stream_camera(
                args.url,
                spec,
                token=token,
                fps=args.fps,
                quality=args.quality,
                duration_s=args.duration,
                on_message=on_message,
            )
        )
        print(json.dumps(status, indent=2))
        return 0
    report = asyncio.run(
        stream_video(
            args.url,
            Path(spec.location),
            fps=args.fps,
            token=token,
            fmt=args.format,
            quality=args.quality,
            send_width=send_width(args),
            realtime=args.realtime,
            delivery=args.delivery,
            on_message=on_message,
        )
    )
    print(json.dumps(report.summary(), indent=2))
    return 0 if not report.errors else 1


async def check_service(url: str, token: str | None) -> None:
    """Join the stream once and leave: raises what a client meets when it cannot stream."""
    from service.client import open_stream

    async with open_stream(url, token=token, delivery="live"):
        pass


def send_width(args: argparse.Namespace) -> int | None:
    """The width a file's frames are scaled down to (None: full size)."""
    from service.client import DEFAULT_SEND_WIDTH

    if args.send_width is None:
        return DEFAULT_SEND_WIDTH if args.format == "jpeg" else None
    return args.send_width or None


def stream_error(message: str) -> None:
    from runtime.errors import GADError

    raise GADError(message)


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
