"""The HTTP routes: ops, the model, the demo page and `POST /classify`.

POST /classify, /v1/classify   a clip (video or features) → labels, segments, clip label
GET  /v1/events                action events as Server-Sent Events (the key's tenant only)
GET  /healthz  /readyz         alive; model loaded and feature cache reachable
GET  /metrics                  Prometheus
GET  /                         the live demo page (camera or a video file)

`router(settings)` builds them: which routes need an API key, and so what the OpenAPI
schema says they answer, follows the settings. Every refusal is a domain error (runtime's
GADError, or service/errors.py's) that `refusal` renders as {"detail": "..."} with the
status service/errors.py gives it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.params import Depends as Dependency
from fastapi.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from runtime.errors import GADError
from runtime.preprocess import FrameError
from service.api.deps import ServedDep, SettingsDep, StreamsDep, require_key
from service.api.responses import Responses, errors_doc, keyed
from service.api.uploads import (
    body_timeout,
    clip_slot,
    content_type,
    declared_length,
    read_body,
    save_body,
    temp_video,
)
from service.auth import authorize_websocket
from service.classify import ClipRows, classify_rows, features_clip, video_rows
from service.errors import (
    BodyStalled,
    LengthRequired,
    UnusableInput,
    http_headers,
    http_status,
)
from service.frames import decode_base64, decode_json, rows_from_bytes
from service.served import ServedModel
from service.settings import Settings

STATIC = Path(__file__).parents[1] / "static"


def router(settings: Settings) -> APIRouter:
    """The routes, with the key checks and documented errors these settings call for."""
    routes = APIRouter()
    key_errors = keyed(settings.auth_enabled)
    key = [Depends(require_key)]

    def ops(flag: bool) -> tuple[list[Dependency], Responses]:
        """An ops route's key check and documented errors: only when `flag` asks for a key."""
        return (key, key_errors) if flag else ([], {})

    health_key, health_errors = ops(settings.auth_health)
    metrics_key, metrics_errors = ops(settings.auth_metrics)
    routes.add_api_route(
        "/healthz", healthz, methods=["GET"], dependencies=health_key, responses=health_errors
    )
    routes.add_api_route(
        "/readyz",
        readyz,
        methods=["GET"],
        dependencies=health_key,
        responses=health_errors | NOT_READY,
    )
    routes.add_api_route(
        "/metrics",
        metrics,
        methods=["GET"],
        dependencies=metrics_key,
        response_class=PlainTextResponse,  # the Prometheus text format
        responses=metrics_errors,
    )
    routes.add_api_route("/", demo_page, methods=["GET"], include_in_schema=False)
    # An endless stream: out of the OpenAPI schema (docs/events.md documents it).
    routes.add_api_route("/v1/events", events, methods=["GET"], include_in_schema=False)
    for path in ("/v1/classify", "/classify"):
        routes.add_api_route(
            path,
            classify,
            methods=["POST"],
            dependencies=key,
            openapi_extra=CLASSIFY_BODY,
            responses=key_errors | errors_doc(400, 408, 411, 413, 422, 503),
        )
    return routes


async def healthz() -> dict[str, Any]:
    return {"status": "ok"}


async def readyz(served: ServedDep, streams: StreamsDep) -> JSONResponse:
    cache_ok = await served.cache.ping()
    ready = cache_ok and not streams.closing
    body = {
        "ready": ready,
        "model": f"{served.package.name}/{served.package.version}",
        "cache": "ok" if cache_ok else "unreachable",
        "shutting_down": streams.closing,
    }
    return JSONResponse(body, status_code=200 if ready else 503)


async def metrics(served: ServedDep) -> Response:
    registry = served.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


SSE_KEEPALIVE_S = 15.0


async def events(
    request: Request, served: ServedDep, settings: SettingsDep, stream: str | None = None
) -> StreamingResponse:
    """Action events as they are made (Server-Sent Events: `id` the event's id, `event`
    started or ended, `data` its JSON), those of the caller's tenant only, of one stream
    with `?stream=ID`. The key may come as `?token=KEY` (a browser's EventSource sends no
    headers). Best effort: a listener that falls 256 events behind loses the oldest."""
    tenant = authorize_websocket(request, settings)  # Bearer, ?token= (AuthError → 401)
    bus = served.events

    async def body() -> AsyncIterator[bytes]:
        async with bus.subscribe(tenant, stream) as subscription:
            yield b"retry: 2000\n: gad events\n\n"
            while True:
                try:
                    event = await subscription.next(SSE_KEEPALIVE_S)
                except EOFError:  # shutting down
                    return
                if event is None:
                    yield b": keepalive\n\n"
                    continue
                data = json.dumps(event, separators=(",", ":"))
                yield f"id: {event['id']}\nevent: {event['event']}\ndata: {data}\n\n".encode()

    headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


async def demo_page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html")


async def classify(request: Request, served: ServedDep, settings: SettingsDep) -> JSONResponse:
    started = time.monotonic()
    try:
        result = await _classify_in_slot(request, served, settings)
    except GADError as exc:
        served.metrics.classify_requests.labels(str(http_status(exc))).inc()
        raise
    served.metrics.classify_requests.labels("200").inc()
    served.metrics.classify_latency.observe(time.monotonic() - started)
    result["model"] = {"name": served.package.name, "version": served.package.version}
    return JSONResponse(result)


async def refusal(request: Request, exc: Exception) -> JSONResponse:
    """The app's handler for domain errors: {"detail": message}, status from the table."""
    headers = http_headers(exc)
    return JSONResponse({"detail": str(exc)}, status_code=http_status(exc), headers=headers or None)


NOT_READY: Responses = {
    503: {"description": "not ready: feature cache unreachable, or shutting down"}
}


CLASSIFY_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "video/mp4": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "fps": {"type": "number", "exclusiveMinimum": 0},
                        "features": {
                            "type": "array",
                            "items": {"type": "array", "items": {"type": "number"}},
                        },
                        "data": {"type": "string", "description": "base64 float32, row-major"},
                        "frames": {"type": "integer", "minimum": 1},
                    },
                    "required": ["fps"],
                }
            },
        },
    }
}


async def _classify_in_slot(
    request: Request, served: ServedModel, settings: Settings
) -> dict[str, Any]:
    """At most GAD_MAX_CLASSIFY clips at once (service/api/uploads.py's `clip_slot`)."""
    with clip_slot(request, settings):
        return await _classify(request, served, settings)


async def _classify(request: Request, served: ServedModel, settings: Settings) -> dict[str, Any]:
    limit = settings.max_clip_bytes
    length = declared_length(request, limit)
    request = body_timeout(request, settings.body_timeout_s)
    kind = content_type(request)
    if kind == "application/json":
        body = await read_body(request, limit)
        clip = _json_clip(served, body, limit)
    elif kind == "multipart/form-data":
        if length is None:
            raise LengthRequired("multipart uploads need a Content-Length")
        clip = await _multipart_clip(request, served)
    else:
        clip = await _raw_clip(request, served, limit)
    return await asyncio.to_thread(classify_rows, served, clip)


def _json_clip(served: ServedModel, body: bytes, limit: int) -> ClipRows:
    try:
        data = decode_json(body)
    except ValueError as exc:
        raise UnusableInput(f"body is {exc}") from exc
    if not isinstance(data, dict):
        raise UnusableInput('send {"fps": N, "features": [[...], ...]} or {"fps", "data"}')
    fps = data.get("fps")
    if not isinstance(fps, int | float) or isinstance(fps, bool):
        raise UnusableInput("'fps' must be a number")
    try:
        fps = float(fps)
    except OverflowError as exc:  # an integer of hundreds of digits
        raise UnusableInput(f"fps must be a positive number, got {str(fps)[:20]}...") from exc
    dim = served.package.feature_dim
    if "data" in data:
        try:
            raw = decode_base64(data["data"], field="data", max_bytes=limit)
            features = rows_from_bytes(raw, dim=dim)
        except FrameError as exc:
            raise UnusableInput(str(exc)) from exc
    elif "features" in data:
        try:  # values past float32 become inf (refused below), without a warning each
            with np.errstate(over="ignore"):
                features = np.asarray(data["features"], dtype=np.float32)
        except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: 10**400
            raise UnusableInput("'features' must be a list of equal-length number lists") from exc
    else:
        raise UnusableInput("send 'features' (nested lists) or 'data' (base64 float32)")
    return features_clip(served, features, fps)


async def _raw_clip(request: Request, served: ServedModel, limit: int) -> ClipRows:
    with temp_video() as path:
        await save_body(request, path, limit)
        return await asyncio.to_thread(video_rows, served, path)


async def _multipart_clip(request: Request, served: ServedModel) -> ClipRows:
    try:
        form = await request.form(max_files=1, max_fields=4)
    except BodyStalled:
        raise
    except Exception as exc:  # malformed multipart: the parser's own error types vary
        raise UnusableInput(f"malformed multipart body: {str(exc)[:120]}") from exc
    try:  # closed whatever happens: its parts are spooled temporary files
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise UnusableInput("multipart body needs a 'file' part holding the video")
        with temp_video() as path:
            with open(path, "wb") as out:
                while chunk := await upload.read(1 << 20):
                    out.write(chunk)
            await form.close()
            return await asyncio.to_thread(video_rows, served, path)
    finally:
        await form.close()
