"""Run the service: check the model package, configure logs, serve with uvicorn."""

from __future__ import annotations

import uvicorn

from runtime.errors import ConfigError
from runtime.manifest import MANIFEST_FILE, resolve_package_dir
from service.app import create_app
from service.logs import configure
from service.settings import Settings, default_model_dir

# Seconds uvicorn waits for open streams to close after SIGTERM (k8s and compose leave more).
GRACEFUL_SHUTDOWN_S = 10


def serve(settings: Settings) -> None:
    """Serve `settings.model` (the demo model when None) until stopped."""
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
        ws_ping_interval=settings.ws_ping_interval_s,
        ws_ping_timeout=settings.ws_ping_timeout_s,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
