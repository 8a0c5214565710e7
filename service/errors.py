"""The service's domain errors, and the one table of what each becomes on the wire: the
HTTP status of its JSON `{"detail": ...}` reply, the WebSocket close code when it ends a
stream, and the `code` of the `{"type": "error"}` message when it refuses one frame and
the stream goes on. The message text is always the error's own.

The session, the clip code and the admission checks raise these (or the cache's, the
frame decoder's and runtime's errors); only service/api/ looks a status or a code up, here.
A lookup walks the error's classes, most specific first, to the first row that says:

    http_status(Busy("..."))            → 503 (and Retry-After: 2, from `http_headers`)
    close_code(TooLarge("..."))         → 1009
    error_code(SeqReplay("..."))        → "seq"
    close_code(KeyError())              → 1011 (any other exception: internal error)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtime.errors import GADError
from runtime.preprocess import FrameError
from service.auth import AuthError
from service.cache import CacheError, CacheUnavailable
from service.wire import Error


class ServiceError(GADError):
    """A refusal of the service's own; its message goes to the client as is."""


# --- requests (POST /classify) and streams ----------------------------------------------


class BadRequest(ServiceError):
    """A malformed request (e.g. a Content-Length that is not a byte count)."""


class BodyStalled(ServiceError):
    """The request body stalled (no byte for GAD_BODY_TIMEOUT_S)."""


class LengthRequired(ServiceError):
    """A multipart upload without a Content-Length."""


class TooLarge(ServiceError):
    """A body, clip, frame or message over its limit."""


class UnusableInput(ServiceError):
    """Input the service cannot use; the message says why."""


class NotFound(ServiceError):
    """No such thing for this caller: an example id, a stream (of the caller's tenant)."""


class Conflict(ServiceError):
    """The request clashes with what is kept (e.g. examples made by another encoder)."""


class Gone(ServiceError):
    """What was asked for has left: stream rows older than the stream's window."""


class Busy(ServiceError):
    """At a concurrency limit (clips being classified, streams open): retry shortly."""


class ShuttingDown(ServiceError):
    """The server is restarting: reconnect (to another replica)."""


class StreamRefused(ServiceError):
    """A stream this service will not open or keep: a bad stream id, a model without a
    per-frame head, taken over by a newer connection, a client that stops reading."""


class BadDelivery(StreamRefused):
    """A `?delivery=` the service does not know (it knows live and lossless)."""


class StreamEnded(ServiceError):
    """The stream ended normally: the client sent `end` and every reply went out."""


# --- one frame refused: an error message, the stream goes on ----------------------------


class BadMessage(FrameError):
    """A text message that is not a frame, features or end message."""


class SeqReplay(FrameError):
    """A seq at or below one already processed."""


class BadTimestamp(FrameError):
    """A capture time the fps sampler cannot place."""


# --- the table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Wire:
    """What an error becomes: None leaves it to a more general row."""

    status: int | None = None  # HTTP status
    close: int | None = None  # WebSocket close code (the stream ends)
    code: str | None = None  # `code` of a per-frame error message (the stream goes on)
    headers: dict[str, str] = field(default_factory=dict)  # HTTP headers with the status


ERRORS: dict[type[BaseException], Wire] = {
    AuthError: Wire(status=401, close=1008, headers={"WWW-Authenticate": "Bearer"}),
    BadRequest: Wire(status=400),
    BodyStalled: Wire(status=408),
    LengthRequired: Wire(status=411),
    TooLarge: Wire(status=413, close=1009),
    UnusableInput: Wire(status=422),
    NotFound: Wire(status=404),
    Conflict: Wire(status=409),
    Gone: Wire(status=410),
    Busy: Wire(status=503, close=1013, headers={"Retry-After": "2"}),
    ShuttingDown: Wire(status=503, close=1012),
    BadDelivery: Wire(close=1008),  # policy: the client asked for a mode there is not
    StreamRefused: Wire(close=1008),
    StreamEnded: Wire(close=1000),
    BadMessage: Wire(code="message"),
    SeqReplay: Wire(code="seq"),
    BadTimestamp: Wire(code="timestamp"),
    FrameError: Wire(code="frame"),
    CacheUnavailable: Wire(status=503, code="cache"),
    CacheError: Wire(close=1011, code="features"),  # e.g. a row float16 cannot hold
    GADError: Wire(status=422, close=1011, code="error"),
    BaseException: Wire(status=500, close=1011, code="error"),  # a bug: "internal error"
}


def _lookup(exc: BaseException, attribute: str) -> Any:
    for cls in type(exc).__mro__:
        wire = ERRORS.get(cls)
        if wire is not None and getattr(wire, attribute) is not None:
            return getattr(wire, attribute)
    raise AssertionError("unreachable: BaseException's row says everything")


def http_status(exc: BaseException) -> int:
    status: int = _lookup(exc, "status")
    return status


def http_headers(exc: BaseException) -> dict[str, str]:
    """The headers that go with `exc`'s status (its own row's, else none)."""
    for cls in type(exc).__mro__:
        wire = ERRORS.get(cls)
        if wire is not None and wire.status is not None:
            return dict(wire.headers)
    return {}


def close_code(exc: BaseException) -> int:
    code: int = _lookup(exc, "close")
    return code


def error_code(exc: BaseException) -> str:
    code: str = _lookup(exc, "code")
    return code


def error_message(
    exc: BaseException, *, seq: int | None = None, retry: bool | None = None
) -> Error:
    """The `{"type": "error"}` message that refuses one frame (the stream goes on)."""
    message: Error = {"type": "error", "code": error_code(exc), "error": str(exc)}
    if seq is not None:
        message["seq"] = seq
    if retry is not None:
        message["retry"] = retry
    return message
