"""service/logs.py: a quiet start (uvicorn's start lines are DEBUG; the runtime logs its
per-graph provider lines at DEBUG itself), the probes left out of the access log, the banner
line in plain text on a terminal; service/server.py's page URL."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from service.logs import BannerFormatter, JsonFormatter, QuietProbes, QuietStart, configure
from service.server import page_url


def access(path: str, status: int) -> logging.LogRecord:
    """A record as uvicorn.access makes it."""
    return logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", path, "1.1", status), None,
    )  # fmt: skip


def record(name: str, message: str, *args: object, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, args, None)


def test_probes_that_answered_are_left_out_of_the_access_log() -> None:
    quiet = QuietProbes()
    for path in ("/healthz", "/readyz", "/metrics", "/readyz?verbose=1"):
        assert not quiet.filter(access(path, 200)), path
    # a failing probe is worth a line; so is every other request
    assert quiet.filter(access("/readyz", 503))
    for path in ("/", "/v1/models", "/v1/classify", "/healthzz", "/v1/streams/healthz"):
        assert quiet.filter(access(path, 200)), path
    assert quiet.filter(record("service.app", "/healthz"))  # not an access line


@pytest.fixture
def root_level() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    yield
    root.setLevel(level)
    root.handlers[:] = handlers
    logging.getLogger("uvicorn.access").filters.clear()


def test_start_chatter_is_debug(root_level: None) -> None:
    quiet = QuietStart()
    logging.getLogger().setLevel(logging.INFO)
    chatter = [
        record("uvicorn.error", "Started server process [%d]", 42),
        record("uvicorn.error", "Waiting for application startup."),
        record("uvicorn.error", "Application startup complete."),
        record(
            "uvicorn.error",
            "Uvicorn running on %s://%s:%d (Press CTRL+C to quit)",
            "http",
            "127.0.0.1",
            8000,
        ),
    ]
    for item in chatter:
        assert not quiet.filter(item), item.getMessage()
        assert item.levelname == "DEBUG"
    kept = [
        record("runtime.sessions", "onnxruntime runs on CPU"),
        record("service.served", "model demo-pose v1, 15 classes"),
        record("uvicorn.error", "Shutting down"),
        record("uvicorn.error", "Finished server process [%d]", 42),
        record("runtime.engine", "engine x on CPUExecutionProvider", level=logging.WARNING),
    ]
    for item in kept:
        assert quiet.filter(item), item.getMessage()
    # at DEBUG the demoted lines come back, as DEBUG
    logging.getLogger().setLevel(logging.DEBUG)
    again = record("uvicorn.error", "Application startup complete.")
    assert quiet.filter(again) and again.levelname == "DEBUG"


def test_the_banner_is_plain_text_on_a_terminal_json_elsewhere() -> None:
    banner = record("service.server", "GAD Stream ready: open %s", "http://127.0.0.1:8000")
    banner.banner = True
    other = record("service.served", "model demo-pose v1")
    plain = BannerFormatter(JsonFormatter())
    assert plain.format(banner) == "GAD Stream ready: open http://127.0.0.1:8000"
    assert json.loads(plain.format(other))["message"] == "model demo-pose v1"
    entry = json.loads(JsonFormatter().format(banner))
    assert entry["message"] == "GAD Stream ready: open http://127.0.0.1:8000"


def test_configure_puts_it_together(root_level: None, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure("INFO", plain_banner=True)
    configure("INFO", plain_banner=True)  # twice: one probe filter, not two
    assert sum(isinstance(f, QuietProbes) for f in logging.getLogger("uvicorn.access").filters) == 1
    logging.getLogger("uvicorn.error").info("Application startup complete.")
    logging.getLogger("service.server").info("GAD Stream ready: open x", extra={"banner": True})
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", "/healthz", "1.1", 200
    )
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", "/v1/models?token=abc", "1.1", 200
    )
    lines = stream.getvalue().splitlines()
    assert lines[0] == "GAD Stream ready: open x"
    assert len(lines) == 2 and "/v1/models?token=***" in json.loads(lines[1])["message"]


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000"),
        ("0.0.0.0", "http://127.0.0.1:8000"),
        ("::", "http://127.0.0.1:8000"),
        ("::1", "http://[::1]:8000"),
        ("gad.local", "http://gad.local:8000"),
    ],
)
def test_the_page_url(host: str, url: str) -> None:
    assert page_url(host, 8000) == url
