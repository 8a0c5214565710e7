"""The routes of the users' examples (docs/teach.md; storage in service/examples/):

POST   /v1/examples                        a clip + label (query or multipart fields), or a
                                           clip + segments JSON → 201 the example
POST   /v1/streams/{stream_id}/examples    {"label", "start_row", "end_row"}: rows a live
                                           stream already computed → 201 the example
GET    /v1/examples                        per label: count, seconds, ids
GET    /v1/examples/{example_id}           one example: per-frame labels, runs, source
DELETE /v1/examples/{example_id}           → the example as it was

Every route is the caller's tenant's (the API key's) and the served model's: one tenant
never sees another's examples. Refusals are service/errors.py's domain errors.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service.api.deps import ServedDep, SettingsDep, TenantDep
from service.api.responses import errors_doc, keyed
from service.api.uploads import (
    body_timeout,
    clip_slot,
    content_type,
    declared_length,
    read_body,
    save_body,
    temp_video,
)
from service.api.ws import STREAM_ID
from service.errors import BodyStalled, LengthRequired, NotFound, UnusableInput
from service.examples.capture import (
    check_person,
    clip_rows,
    example_set,
    model_info,
    stream_rows,
)
from service.examples.labels import (
    OUTSIDE,
    TimeSegment,
    check_label,
    one_segment,
    parse_segments,
    row_labels,
    seconds,
)
from service.frames import decode_json
from service.settings import Settings

FIELDS = ("label", "start", "end", "outside", "segments", "name")
MAX_JSON_BYTES = 1 << 16


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(tags=["examples"])
    key = keyed(settings.auth_enabled)
    routes.add_api_route(
        "/v1/examples",
        add_clip,
        methods=["POST"],
        status_code=201,
        responses=key | errors_doc(400, 408, 409, 411, 413, 422, 503),
    )
    routes.add_api_route(
        "/v1/streams/{stream_id}/examples",
        add_stream,
        methods=["POST"],
        status_code=201,
        responses=key | errors_doc(400, 404, 409, 410, 422),
    )
    routes.add_api_route("/v1/examples", list_examples, methods=["GET"], responses=key)
    routes.add_api_route(
        "/v1/examples/{example_id}", get_example, methods=["GET"], responses=key | errors_doc(404)
    )
    routes.add_api_route(
        "/v1/examples/{example_id}",
        delete_example,
        methods=["DELETE"],
        responses=key | errors_doc(404),
    )
    return routes


async def add_clip(
    request: Request, served: ServedDep, settings: SettingsDep, tenant: TenantDep
) -> JSONResponse:
    """A clip (raw video bytes, or multipart with a `file` part) and its label: `label`
    (+ `start`, `end` seconds), or `segments` ([{label, start, end}] JSON); `outside`:
    background (default) or drop."""
    examples = example_set(served, settings, tenant)
    if served.encoding is None:
        clip_rows(served, Path())  # refuses: this model takes feature rows
    limit = settings.max_clip_bytes
    length = declared_length(request, limit)
    fields = {k: v for k, v in request.query_params.items() if k in FIELDS}
    multipart = content_type(request) == "multipart/form-data"
    if not multipart:
        _wanted(fields, examples.background)  # refuse a bad label before reading the body
    request = body_timeout(request, settings.body_timeout_s)
    with clip_slot(request, settings), temp_video() as path:
        if multipart:
            if length is None:
                raise LengthRequired("multipart uploads need a Content-Length")
            fields |= await _save_multipart(request, path)
        else:
            await save_body(request, path, limit)
            fields.setdefault("name", "")
        segments, outside = _wanted(fields, examples.background)
        rows, source = await asyncio.to_thread(clip_rows, served, path)
    keep, labels = row_labels(len(rows), served.package.fps, segments, examples.background, outside)
    rows = rows[keep]
    persons = check_person(served, rows, labels, examples.background)
    source = {
        "kind": "clip",
        "file": Path(fields.get("name", "")).name[:200] or None,
        "segments": [_segment_json(s) for s in segments],
        "outside": outside,
        "first_row": keep.start,
        "clip_rows": keep.stop - keep.start if outside == "drop" else len(rows),
    } | {k: v for k, v in source.items() if k != "kind"}
    info = {"source": source, **model_info(served), "person_rows": persons}
    record = await asyncio.to_thread(examples.add, rows, labels, info)
    return JSONResponse(record, status_code=201)


async def add_stream(
    stream_id: str, request: Request, served: ServedDep, settings: SettingsDep, tenant: TenantDep
) -> JSONResponse:
    """`{"label": L, "start_row": a, "end_row": b}`: rows a ..< b of the caller's stream, as
    its labels number them (`row`), saved without re-encoding; they must still be in the
    stream's window (the last `span` rows: 410 otherwise)."""
    examples = example_set(served, settings, tenant)
    if not STREAM_ID.fullmatch(stream_id):
        raise NotFound(f"no stream {stream_id[:40]!r}: ids are 1-128 of [A-Za-z0-9._-]")
    declared_length(request, MAX_JSON_BYTES)
    body = await read_body(body_timeout(request, settings.body_timeout_s), MAX_JSON_BYTES)
    try:
        data = decode_json(body)
    except ValueError as exc:
        raise UnusableInput(f"body is {exc}") from exc
    if not isinstance(data, dict):
        raise UnusableInput('send {"label": "wave", "start_row": 40, "end_row": 60}')
    label = check_label(data.get("label"), examples.background)
    start, end = _row(data, "start_row"), _row(data, "end_row")
    if end <= start:
        raise UnusableInput(f"need start_row < end_row, got {start} and {end}")
    taken = await stream_rows(served, tenant, stream_id, start, end)
    labels = [label] * len(taken.rows)
    persons = check_person(served, taken.rows, labels, examples.background)
    info = {"source": taken.source, **model_info(served), "person_rows": persons}
    record = await asyncio.to_thread(examples.add, taken.rows, labels, info)
    return JSONResponse(record, status_code=201)


async def list_examples(served: ServedDep, settings: SettingsDep, tenant: TenantDep) -> Any:
    examples = example_set(served, settings, tenant)
    summary = await asyncio.to_thread(examples.summary)
    return {**model_info(served), "fps": served.package.fps, **summary}


async def get_example(
    example_id: str, served: ServedDep, settings: SettingsDep, tenant: TenantDep
) -> Any:
    return await asyncio.to_thread(example_set(served, settings, tenant).get, example_id)


async def delete_example(
    example_id: str, served: ServedDep, settings: SettingsDep, tenant: TenantDep
) -> Any:
    removed = await asyncio.to_thread(example_set(served, settings, tenant).remove, example_id)
    return {"deleted": example_id, "labels": removed["labels"], "rows": removed["rows"]}


def _wanted(fields: dict[str, str], background: str) -> tuple[list[TimeSegment], str]:
    """The labelled time of a clip and what becomes of the rest, from its fields."""
    outside = fields.get("outside") or "background"
    if outside not in OUTSIDE:
        raise UnusableInput(f"outside must be background or drop, got {outside[:20]!r}")
    if fields.get("segments"):
        if fields.get("label") or fields.get("start") or fields.get("end"):
            raise UnusableInput("give either label (+ start, end) or segments, not both")
        try:
            parsed = json.loads(fields["segments"])
        except ValueError as exc:
            raise UnusableInput(f"segments is not JSON: {exc}") from exc
        return parse_segments(parsed, background), outside
    label = check_label(fields.get("label"), background)
    segment = one_segment(
        label, seconds(fields.get("start"), "start"), seconds(fields.get("end"), "end")
    )
    return [segment], outside


def _segment_json(segment: TimeSegment) -> dict[str, Any]:
    end = None if segment.end == float("inf") else segment.end
    return {"label": segment.label, "start": segment.start, "end": end}


def _row(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 62:
        raise UnusableInput(f"{name} must be a row number >= 0 (the `row` of a label)")
    return value


async def _save_multipart(request: Request, path: Path) -> dict[str, str]:
    """The `file` part written to `path`; the text fields (label, start, ...) returned."""
    try:
        form = await request.form(max_files=1, max_fields=len(FIELDS))
    except BodyStalled:
        raise
    except Exception as exc:  # malformed multipart: the parser's own error types vary
        raise UnusableInput(f"malformed multipart body: {str(exc)[:120]}") from exc
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise UnusableInput("multipart body needs a 'file' part holding the video")
        size = 0
        with open(path, "wb") as out:
            while chunk := await upload.read(1 << 20):
                size += len(chunk)
                out.write(chunk)
        if not size:
            raise UnusableInput("the 'file' part is empty: send the video's bytes")
        fields = {k: v for k, v in form.items() if k in FIELDS and isinstance(v, str)}
        fields.setdefault("name", upload.filename or "")
        return fields
    finally:
        await form.close()
