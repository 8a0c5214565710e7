"""The FastAPI app: `create_app(settings)` builds it; `gad serve` runs it under uvicorn.

WS   /v1/streams/{stream_id}   frames in, one label per frame out (service/api/ws.py)
POST /classify, /v1/classify   a clip (video or features) → labels, segments, clip label
GET  /v1/models                the loaded model package and its versions
POST /v1/models/reload         switch to a new version (also when one appears: GAD_MODEL_WATCH_S)
POST /v1/models/rollback       back to the version before
POST /v1/train, GET /v1/jobs   a new version from the caller's examples (service/jobs.py)
GET  /healthz  /readyz         alive; model loaded and feature cache reachable
GET  /metrics                  Prometheus
GET  /                         the live demo page (camera or a video file)

The HTTP routes live in service/api/http.py, the stream route in service/api/ws.py, what
they take from the app in service/api/deps.py; domain errors become statuses and close
codes by the one table in service/errors.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from runtime.backends import Backend
from runtime.errors import GADError
from service.api import examples, http, models, ws
from service.api import jobs as job_routes
from service.api.deps import Streams
from service.jobs import Jobs
from service.served import Infra
from service.settings import Settings
from service.tenants import TenantModels
from service.versions import ModelVersions

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, backend: Backend | None = None) -> FastAPI:
    """The app serving settings.model; `backend` opens its graphs (None: onnxruntime; the
    composition root, `gad serve`, builds the one GAD_BACKEND names)."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        versions = ModelVersions(settings, backend, Infra.build(settings))
        versions.start()
        app.state.versions = versions
        app.state.served = versions.current  # kept current by ModelVersions.on_switch
        versions.on_switch = lambda served: setattr(app.state, "served", served)
        # Each tenant's own versions, where several keys train their own (service/tenants.py).
        app.state.tenants = tenants = TenantModels(versions, backend)
        app.state.jobs = jobs = Jobs(tenants, settings)
        watcher = None
        if settings.model_watch_s > 0 and versions.folder is not None:
            watcher = asyncio.create_task(versions.watch(settings.model_watch_s))
        app.state.streams = Streams()
        app.state.classifying = 0
        if not settings.auth_enabled:
            # open to this machine only: worth a line, not a warning; open to a network: warn
            loopback = settings.host in ("127.0.0.1", "::1", "localhost")
            log.log(
                logging.INFO if loopback else logging.WARNING,
                "no API keys configured (GAD_API_KEYS): every route is open%s",
                f" (to this machine only: bound to {settings.host})" if loopback else "",
            )
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
            await _shutdown(app)
            await jobs.close()
            await tenants.close()
            await versions.close()

    app = FastAPI(
        title="GAD Stream",
        version="1",
        description="Online action detection: stream camera frames, read one label per frame.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_exception_handler(GADError, http.refusal)
    app.include_router(http.router(settings))
    app.include_router(ws.router)
    app.include_router(examples.router(settings))
    app.include_router(models.router(settings))
    app.include_router(job_routes.router(settings))
    return app


async def _shutdown(app: FastAPI) -> None:
    """Close open streams with 1012 so clients reconnect (to another replica)."""
    streams: Streams = app.state.streams
    streams.closing = True
    streams.stop_watching()
    for task in list(streams.open):
        task.cancel()
    if streams.open:
        await asyncio.wait(list(streams.open), timeout=5)
