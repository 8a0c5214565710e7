"""What the OpenAPI schema says of refusals: every one is a JSON {"detail": "..."} with the
status service/errors.py gives it; each route lists the statuses it can answer (the schema
test, tests/service/test_fuzz_http.py, holds every route to its list)."""

from __future__ import annotations

from typing import Any

Responses = dict[int | str, dict[str, Any]]

# Every refusal is a JSON {"detail": "..."}; the schema says which routes give which.
ERRORS = {
    400: "a malformed request (e.g. a Content-Length that is not a byte count)",
    401: "API key missing or wrong",
    408: "the request body stalled (no byte for GAD_BODY_TIMEOUT_S)",
    411: "a multipart upload without a Content-Length",
    404: "no such thing for this key (an example, a job, a stream)",
    409: "clashes with what is kept or running (e.g. a version that cannot be served)",
    410: "gone: stream rows older than the stream's window",
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


def errors_doc(*codes: int) -> Responses:
    """The `responses` of a route that can refuse with these statuses."""
    return {code: {"description": ERRORS[code], "content": DETAIL} for code in codes}


def keyed(auth: bool) -> Responses:
    """401 when the service has API keys."""
    return errors_doc(401) if auth else {}
