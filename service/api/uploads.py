"""Reading a clip upload, for every route that takes one (`POST /v1/classify`, `POST
/v1/examples`): the Content-Length checked before a byte is read, the body counted as it
arrives (chunking cannot pass the limit), a stalled body → 408, a video spooled to a
temporary file, and at most GAD_MAX_CLASSIFY clips decoded at once (they share one count,
`app.state.classifying`: both decode and encode whole videos).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fastapi import Request
from starlette.types import Message

from service.errors import BadRequest, BodyStalled, Busy, TooLarge, UnusableInput
from service.settings import Settings


def declared_length(request: Request, limit: int) -> int | None:
    """The request's Content-Length (None: none sent); BadRequest for one that is not a
    byte count, TooLarge for one over `limit`."""
    length = request.headers.get("content-length")
    if length is None:
        return None
    # isdigit() alone lets "²" and 5000-digit strings through to int(), which raises.
    if not (length.isascii() and length.isdigit() and len(length) < 19):
        raise BadRequest("Content-Length must be a decimal byte count")
    if int(length) > limit:
        raise TooLarge(f"body over the {limit}-byte limit")
    return int(length)


def content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def body_timeout(request: Request, seconds: float) -> Request:
    """`request` whose body reads fail with 408 after `seconds` without a byte: a client
    that declares a body and stalls must not hold a clip slot forever."""
    receive = request.receive

    async def timed() -> Message:
        try:
            return await asyncio.wait_for(receive(), seconds)
        except TimeoutError:
            raise BodyStalled(f"the request body stalled for {seconds:g} s") from None

    return Request(request.scope, timed)


async def read_body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():  # counted as it arrives: chunking cannot bypass it
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"body over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def save_body(request: Request, path: Path, limit: int) -> int:
    """The raw body written to `path`, counted against `limit`; UnusableInput when empty."""
    size = 0
    with open(path, "wb") as out:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"body over the {limit}-byte limit")
            out.write(chunk)
    if not size:
        raise UnusableInput("empty body: send a video file, multipart or JSON features")
    return size


@contextlib.contextmanager
def temp_video() -> Iterator[Path]:
    handle, name = tempfile.mkstemp(prefix="gad-clip-", suffix=".video")
    os.close(handle)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


@contextlib.contextmanager
def clip_slot(request: Request, settings: Settings) -> Iterator[None]:
    """One of the GAD_MAX_CLASSIFY clip slots (Busy → 503 when all are taken)."""
    state = request.app.state
    if state.classifying >= settings.max_classify:
        raise Busy(f"{settings.max_classify} clips are being classified: retry shortly")
    state.classifying += 1
    try:
        yield
    finally:
        state.classifying -= 1
