"""service/errors.py: one table says what each domain error becomes on the wire."""

import pytest

from runtime.engine import EngineInputError
from runtime.errors import GADError
from runtime.preprocess import FrameError
from service.auth import AuthError
from service.batcher import BatcherClosed
from service.cache import CacheError, CacheFull, CacheMismatch, CacheUnavailable
from service.errors import (
    BadMessage,
    BadRequest,
    BadTimestamp,
    BodyStalled,
    Busy,
    LengthRequired,
    SeqReplay,
    ShuttingDown,
    StreamEnded,
    StreamRefused,
    TooLarge,
    UnusableInput,
    close_code,
    error_code,
    error_message,
    http_headers,
    http_status,
)
from tests.service.streaming import client


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (BadRequest, 400),
        (AuthError, 401),
        (BodyStalled, 408),
        (LengthRequired, 411),
        (TooLarge, 413),
        (UnusableInput, 422),
        (FrameError, 422),
        (EngineInputError, 422),  # any other GADError: input the service cannot use
        (Busy, 503),
        (CacheUnavailable, 503),
        (KeyError, 500),
    ],
)
def test_http_status(error: type[Exception], status: int) -> None:
    assert http_status(error("why")) == status


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (StreamEnded, 1000),
        (AuthError, 1008),
        (StreamRefused, 1008),
        (TooLarge, 1009),
        (CacheError, 1011),
        (CacheUnavailable, 1011),  # its own row gives a status only: CacheError's close
        (CacheFull, 1011),
        (BatcherClosed, 1011),
        (RuntimeError, 1011),
        (ShuttingDown, 1012),
        (Busy, 1013),
    ],
)
def test_close_code(error: type[Exception], code: int) -> None:
    assert close_code(error("why")) == code


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (BadMessage, "message"),
        (SeqReplay, "seq"),
        (BadTimestamp, "timestamp"),
        (FrameError, "frame"),
        (CacheUnavailable, "cache"),
        (CacheMismatch, "features"),
    ],
)
def test_error_message_code(error: type[Exception], code: str) -> None:
    message = error_message(error("what went wrong"), seq=4)
    assert message == {"type": "error", "code": code, "error": "what went wrong", "seq": 4}
    assert error_code(error("x")) == code


def test_headers_go_with_their_status() -> None:
    assert http_headers(Busy("x")) == {"Retry-After": "2"}
    assert http_headers(AuthError("x")) == {"WWW-Authenticate": "Bearer"}
    assert http_headers(UnusableInput("x")) == {}
    assert http_headers(GADError("x")) == {}


def test_a_refused_key_is_401_with_its_challenge(tiny_package) -> None:
    with client(tiny_package[1], api_keys=("k-1",)) as http:
        missing = http.get("/v1/models")
        wrong = http.post("/classify", json={}, headers={"Authorization": "Bearer nope"})
        ok = http.get("/v1/models", headers={"Authorization": "Bearer k-1"})
    assert missing.status_code == 401 and missing.json() == {"detail": "API key required"}
    assert missing.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 401 and wrong.json() == {"detail": "invalid API key"}
    assert ok.status_code == 200
