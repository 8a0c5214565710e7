"""Run the service: check the model package, configure logs, serve with uvicorn."""

from __future__ import annotations

import uvicorn

from runtime.backends import Backend
from runtime.manifest import resolve_package_dir
from service.app import create_app
from service.logs import configure
from service.settings import Settings

# Seconds uvicorn waits for open streams to close after SIGTERM (k8s and compose leave more).
GRACEFUL_SHUTDOWN_S = 10


def serve(settings: Settings, backend: Backend | None = None) -> None:
    """Serve `settings.model` until stopped, its graphs opened by `backend` (None: onnxruntime)."""
    resolve_package_dir(settings.model_dir)  # a clear error now rather than at the first request
    configure(settings.log_level, json_lines=settings.log_json)
    uvicorn.run(
        create_app(settings, backend=backend),
        host=settings.host,
        port=settings.port,
        log_config=None,
        ws_max_size=settings.max_message_bytes,
        ws_ping_interval=settings.ws_ping_interval_s,
        ws_ping_timeout=settings.ws_ping_timeout_s,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
