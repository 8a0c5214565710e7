"""The FastAPI app: `create_app(settings)` builds it; `gad serve` runs it under uvicorn.

WS   /v1/streams/{stream_id}   frames in, one label per frame out (service/api/ws.py)
POST /classify, /v1/classify   a clip (video or features) → labels, segments, clip label
GET  /v1/models                the loaded model package
GET  /healthz  /readyz         alive; model loaded and feature cache reachable
GET  /metrics                  Prometheus
GET  /                         the live demo page (camera or a video file)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import Message

from runtime.errors import GADError
from service.api.ws import Streams, stream_endpoint
from service.auth import authorize_request
from service.classify import ClipError, ClipRows, classify_rows, feature_rows, video_rows
from service.frames import FrameError, decode_base64
from service.runtime import Runtime
from service.settings import Settings, default_model_dir

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    model = settings.model or default_model_dir()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.build(settings, model=model)
        runtime.start()
        app.state.runtime = runtime
        app.state.streams = Streams()
        app.state.classifying = 0
        if not settings.auth_enabled:
            log.warning("no API keys configured (GAD_API_KEYS): every route is open")
        try:
            yield
        finally:
            await _shutdown(app)
            await runtime.close()

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

    keyed = _errors(401) if settings.auth_enabled else {}

    def ops_errors(flag: bool) -> dict[int | str, dict]:
        return keyed if flag else {}

    def require_key(request: Request) -> str | None:
        return authorize_request(request, settings)

    def ops_key(flag: bool):
        def check(request: Request) -> None:
            if flag:
                authorize_request(request, settings)

        return check

    @app.exception_handler(GADError)
    async def gad_error(request: Request, exc: GADError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.get(
        "/healthz",
        dependencies=[Depends(ops_key(settings.auth_health))],
        responses=ops_errors(settings.auth_health),
    )
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        dependencies=[Depends(ops_key(settings.auth_health))],
        responses=ops_errors(settings.auth_health) | NOT_READY,
    )
    async def readyz(request: Request) -> JSONResponse:
        runtime: Runtime = request.app.state.runtime
        cache_ok = await runtime.cache.ping()
        closing = request.app.state.streams.closing
        ready = cache_ok and not closing
        body = {
            "ready": ready,
            "model": f"{runtime.package.name}/{runtime.package.version}",
            "cache": "ok" if cache_ok else "unreachable",
            "shutting_down": closing,
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get(
        "/metrics",
        dependencies=[Depends(ops_key(settings.auth_metrics))],
        response_class=PlainTextResponse,  # the Prometheus text format
        responses=ops_errors(settings.auth_metrics),
    )
    async def metrics(request: Request) -> Response:
        registry = request.app.state.runtime.metrics.registry
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models", dependencies=[Depends(require_key)], responses=keyed)
    async def models(request: Request) -> dict:
        return {"models": [request.app.state.runtime.describe()]}

    @app.get("/", include_in_schema=False)
    async def demo_page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    classify_route = {
        "dependencies": [Depends(require_key)],
        "openapi_extra": CLASSIFY_BODY,
        "responses": keyed | _errors(400, 408, 411, 413, 422, 503),
    }

    @app.post("/classify", **classify_route)
    @app.post("/v1/classify", **classify_route)
    async def classify(request: Request) -> JSONResponse:
        runtime: Runtime = request.app.state.runtime
        started = time.monotonic()
        if request.app.state.classifying >= settings.max_classify:
            runtime.metrics.classify_requests.labels("503").inc()
            return JSONResponse(
                {"detail": f"{settings.max_classify} clips are being classified: retry shortly"},
                status_code=503,
                headers={"Retry-After": "2"},
            )
        request.app.state.classifying += 1
        try:
            result = await _classify(request, runtime)
        except ClipError as exc:
            runtime.metrics.classify_requests.labels(str(exc.status)).inc()
            return JSONResponse({"detail": exc.message}, status_code=exc.status)
        finally:
            request.app.state.classifying -= 1
        runtime.metrics.classify_requests.labels("200").inc()
        runtime.metrics.classify_latency.observe(time.monotonic() - started)
        result["model"] = {"name": runtime.package.name, "version": runtime.package.version}
        return JSONResponse(result)

    app.add_api_websocket_route("/v1/streams/{stream_id}", stream_endpoint)
    return app


# Every refusal is a JSON {"detail": "..."}; the schema says which routes give which.
ERRORS = {
    400: "a malformed request (e.g. a Content-Length that is not a byte count)",
    401: "API key missing or wrong",
    408: "the request body stalled (no byte for GAD_BODY_TIMEOUT_S)",
    411: "a multipart upload without a Content-Length",
    413: "the body or the clip is over its limit",
    422: "input the service cannot use: the reason is in `detail`",
    503: "busy: retry after Retry-After seconds",
}
DETAIL = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {"detail": {"type": "string"}},
            "required": ["detail"],
        }
    }
}
NOT_READY = {503: {"description": "not ready: feature cache unreachable, or shutting down"}}


def _errors(*codes: int) -> dict[int | str, dict]:
    return {code: {"description": ERRORS[code], "content": DETAIL} for code in codes}


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


async def _classify(request: Request, runtime: Runtime) -> dict:
    settings = runtime.settings
    limit = settings.max_clip_bytes
    length = request.headers.get("content-length")
    # isdigit() alone lets "²" and 5000-digit strings through to int(), which raises.
    if length is not None and not (length.isascii() and length.isdigit() and len(length) < 19):
        raise ClipError(400, "Content-Length must be a decimal byte count")
    if length is not None and int(length) > limit:
        raise ClipError(413, f"body over the {limit}-byte limit")
    request = _body_timeout(request, settings.body_timeout_s)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        body = await _read_body(request, limit)
        clip = _json_clip(runtime, body)
    elif kind == "multipart/form-data":
        if length is None:
            raise ClipError(411, "multipart uploads need a Content-Length")
        clip = await _multipart_clip(request, runtime)
    else:
        clip = await _raw_clip(request, runtime, limit)
    return await asyncio.to_thread(classify_rows, runtime, clip)


def _body_timeout(request: Request, seconds: float) -> Request:
    """`request` whose body reads fail with 408 after `seconds` without a byte: a client
    that declares a body and stalls must not hold a /classify slot forever."""
    receive = request.receive

    async def timed() -> Message:
        try:
            return await asyncio.wait_for(receive(), seconds)
        except TimeoutError:
            raise ClipError(408, f"the request body stalled for {seconds:g} s") from None

    return Request(request.scope, timed)


async def _read_body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():  # counted as it arrives: chunking cannot bypass it
        size += len(chunk)
        if size > limit:
            raise ClipError(413, f"body over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _json_clip(runtime: Runtime, body: bytes) -> ClipRows:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # ValueError: also ints over 4300 digits
        raise ClipError(422, f"body is not valid JSON: {str(exc)[:120]}") from exc
    if not isinstance(data, dict):
        raise ClipError(422, 'send {"fps": N, "features": [[...], ...]} or {"fps", "data"}')
    fps = data.get("fps")
    if not isinstance(fps, int | float) or isinstance(fps, bool):
        raise ClipError(422, "'fps' must be a number")
    try:
        fps = float(fps)
    except OverflowError as exc:  # an integer of hundreds of digits
        raise ClipError(422, f"fps must be a positive number, got {str(fps)[:20]}...") from exc
    dim = runtime.package.feature_dim
    if "data" in data:
        try:
            raw = decode_base64(
                data["data"], field="data", max_bytes=runtime.settings.max_clip_bytes
            )
        except FrameError as exc:
            raise ClipError(422, str(exc)) from exc
        if len(raw) % (4 * dim):
            raise ClipError(422, f"'data' must hold whole rows of {dim} float32 values")
        features = np.frombuffer(raw, "<f4").reshape(-1, dim).astype(np.float32)
    elif "features" in data:
        try:  # values past float32 become inf (refused below), without a warning each
            with np.errstate(over="ignore"):
                features = np.asarray(data["features"], dtype=np.float32)
        except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: 10**400
            raise ClipError(422, "'features' must be a list of equal-length number lists") from exc
    else:
        raise ClipError(422, "send 'features' (nested lists) or 'data' (base64 float32)")
    return feature_rows(runtime, features, fps)


async def _raw_clip(request: Request, runtime: Runtime, limit: int) -> ClipRows:
    with _temp_video() as path:
        size = 0
        with open(path, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ClipError(413, f"body over the {limit}-byte limit")
                out.write(chunk)
        if not size:
            raise ClipError(422, "empty body: send a video file, multipart or JSON features")
        return await asyncio.to_thread(video_rows, runtime, path)


async def _multipart_clip(request: Request, runtime: Runtime) -> ClipRows:
    try:
        form = await request.form(max_files=1, max_fields=4)
    except ClipError:  # the body stalled
        raise
    except Exception as exc:  # malformed multipart: the parser's own error types vary
        raise ClipError(422, f"malformed multipart body: {str(exc)[:120]}") from exc
    try:  # closed whatever happens: its parts are spooled temporary files
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ClipError(422, "multipart body needs a 'file' part holding the video")
        with _temp_video() as path:
            with open(path, "wb") as out:
                while chunk := await upload.read(1 << 20):
                    out.write(chunk)
            await form.close()
            return await asyncio.to_thread(video_rows, runtime, path)
    finally:
        await form.close()


@contextlib.contextmanager
def _temp_video():
    handle, name = tempfile.mkstemp(prefix="gad-clip-", suffix=".video")
    os.close(handle)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


async def _shutdown(app: FastAPI) -> None:
    """Close open streams with 1012 so clients reconnect (to another replica)."""
    streams: Streams = app.state.streams
    streams.closing = True
    for task in list(streams.open):
        task.cancel()
    if streams.open:
        await asyncio.wait(list(streams.open), timeout=5)
