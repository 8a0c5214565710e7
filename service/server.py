"""Run the service: check the model package, configure logs, serve with uvicorn."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
from collections.abc import Sequence

import uvicorn
from fastapi import FastAPI

from runtime.backends import Backend
from runtime.errors import GADError
from runtime.manifest import resolve_package_dir
from service.app import create_app
from service.logs import configure
from service.settings import Settings

log = logging.getLogger(__name__)

# Seconds uvicorn waits for open streams to close after SIGTERM (k8s and compose leave more).
GRACEFUL_SHUTDOWN_S = 10


def serve(settings: Settings, backend: Backend | None = None) -> None:
    """Serve `settings.model` until stopped, its graphs opened by `backend` (None: onnxruntime)."""
    resolve_package_dir(settings.model_dir)  # a clear error now rather than at the first request
    configure(settings.log_level, json_lines=settings.log_json)
    app = create_app(settings, backend=backend)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        ws_max_size=settings.max_message_bytes,
        ws_ping_interval=settings.ws_ping_interval_s,
        ws_ping_timeout=settings.ws_ping_timeout_s,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = Server(config, app)
    with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run: Ctrl-C is a stop
        server.run()
    if not server.started:  # uvicorn has logged why (the port taken, the model failed...)
        raise ServiceNotStarted(
            f"the service did not start on {settings.host}:{settings.port} (the log above says "
            "why); hint: another port with --port or GAD_PORT if that one is taken"
        )


class ServiceNotStarted(GADError):
    """uvicorn could not bind or the app's start-up failed."""


class Server(uvicorn.Server):
    """uvicorn's server, whose "running on" line (DEBUG: service/logs.py) is followed by one
    that says what is served and where to open the page."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app

    def _log_started_message(self, listeners: Sequence[socket.SocketType]) -> None:
        super()._log_started_message(listeners)
        host = self.config.host
        port = self.config.port or (listeners[0].getsockname()[1] if listeners else 0)
        served = getattr(self.app.state, "served", None)
        what = "" if served is None else f"{served.package.name} v{served.package.version}; "
        log.info(
            "GAD Stream ready: open %s (%s%sCtrl-C to stop)",
            page_url(host, port),
            what,
            f"listening on every interface as {host}; " if _any_address(host) else "",
            extra={"banner": True},
        )


def page_url(host: str, port: int) -> str:
    """The demo page's URL for a server bound to host:port (the loopback for 0.0.0.0 / ::)."""
    if _any_address(host):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _any_address(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return host == ""
