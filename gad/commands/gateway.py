"""`gad gateway CONFIG`: run the cameras of a YAML file into the service
(service/gateway/; no torch).

    gad gateway docker/gateway.example.yaml
    gad gateway cameras.yaml --check        # validate the file and exit

Each camera is read in its own thread and streamed live; both its source and its stream are
reconnected forever with capped exponential backoff. /metrics and /healthz on `listen:`.
"""

from __future__ import annotations

import argparse
import errno
from pathlib import Path

from gad.subcommands import Subcommands


def register(commands: Subcommands) -> None:
    commands.add(
        "gateway",
        build,
        help="stream many cameras (RTSP, HTTP, V4L2, files) to a running service",
        description="Read the cameras of a YAML file, sample each at the model's fps on its "
        "own timestamps and stream it live to WS /v1/streams/ID; reopen a camera that drops "
        "or stalls and rejoin a service that restarts (same stream id, the window resumes). "
        "Serves /metrics and /healthz; logs state changes as JSON lines.",
    )


def build(gateway: argparse.ArgumentParser) -> None:
    gateway.add_argument("config", type=Path, help="the gateway's YAML file")
    gateway.add_argument(
        "--listen", help="HOST:PORT for /metrics and /healthz (overrides the file)"
    )
    gateway.add_argument("--check", action="store_true", help="validate the file and exit")
    gateway.add_argument("--log-format", choices=["json", "text"], default="json")
    gateway.add_argument("--log-level", default="INFO")
    gateway.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from runtime.errors import GADError
    from service.gateway.config import load_config
    from service.gateway.run import configure_logs, run_gateway

    config = load_config(args.config)
    if args.listen:
        host, _, port = args.listen.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise GADError(f"--listen {args.listen}: use HOST:PORT, e.g. 127.0.0.1:9100")
        config = config.model_copy(update={"listen_host": host, "listen_port": int(port)})
    if args.check:
        for camera in config.cameras:
            source = camera.source
            print(f"{camera.id:<16} {source.kind:<6} {source.describe()} -> {camera.url}")
        listen = f"{config.listen_host}:{config.listen_port}"
        print(f"ok: {len(config.cameras)} cameras; /metrics and /healthz on {listen}")
        return 0
    configure_logs(args.log_level, json_lines=args.log_format == "json")
    try:
        return run_gateway(config)
    except OSError as exc:  # /metrics and /healthz cannot listen: one line, not a traceback
        if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise
        listen = f"{config.listen_host}:{config.listen_port}"
        raise GADError(
            f"cannot listen on {listen} for /metrics and /healthz: {exc.strerror}; "
            "hint: another port with --listen HOST:PORT (or `listen:` in the file)"
        ) from None
