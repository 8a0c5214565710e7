"""Structured logs: one JSON object per line, with stream id and seq where they apply.

    log.info("label", extra={"stream": "cam-1", "seq": 17})
API keys never reach a log line: the service logs tenants (key digests), never keys.

A quiet start: uvicorn's start-up chatter and the runtime's per-graph "... on
CPUExecutionProvider" lines are DEBUG detail (runtime.sessions says once what runs), so `gad
serve` at INFO prints what it serves and one line that says where to open the page — a
record with `extra={"banner": True}`, printed as plain text when stderr is a terminal
(JSON like every other line otherwise). uvicorn's access log leaves out the probes
(/healthz, /readyz, /metrics) that answered; every other request is logged.
"""

from __future__ import annotations

import json
import logging
import re
import time

FIELDS = ("stream", "seq", "code", "tenant", "status", "path", "ms")
# uvicorn logs request paths with their query string: `?token=KEY` (how browsers may pass
# an API key) must never reach a log line, nor a Bearer header echoed in an error.
SECRETS = re.compile(r"(token=|bearer\s+|gad\.key\.)[^&\s\"',;)]+", re.IGNORECASE)


class RedactSecrets(logging.Filter):
    """Rewrites every record's final message with API keys replaced by ***."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = SECRETS.sub(lambda m: m.group(1) + "***", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


# Polled every few seconds by kubelets, compose and Prometheus: logged only when they fail.
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class QuietProbes(logging.Filter):
    """Drops uvicorn.access lines of probes that answered (status < 400); others pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn.access: (client, method, path with query, http version, status)
        if record.name != "uvicorn.access" or not isinstance(args, tuple) or len(args) < 5:
            return True
        path, status = str(args[2]).split("?", 1)[0], args[4]
        return not (path in PROBE_PATHS and isinstance(status, int) and status < 400)


# INFO records that are DEBUG detail at start: (logger name, message pattern).
DEMOTED = (
    # uvicorn's own start lines; the service says where to open the page (service/server.py)
    ("uvicorn.error", re.compile(r"Started server process|Waiting for application (startup|"
                                 r"shutdown)|Application (startup|shutdown) complete|"
                                 r"Uvicorn running on")),
)  # fmt: skip


class QuietStart(logging.Filter):
    """Turns the DEMOTED INFO records into DEBUG ones: shown only when the log is at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        for prefix, pattern in DEMOTED:
            if record.name.startswith(prefix) and pattern.search(record.getMessage()):
                record.levelno, record.levelname = logging.DEBUG, "DEBUG"
                return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


class BannerFormatter(logging.Formatter):
    """`fallback`'s lines, except a banner record (`extra={"banner": True}`): its bare message."""

    def __init__(self, fallback: logging.Formatter) -> None:
        super().__init__()
        self.fallback = fallback

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "banner", False):
            return record.getMessage()
        return self.fallback.format(record)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(
    level: str = "INFO", *, json_lines: bool = True, plain_banner: bool | None = None
) -> None:
    """The service's log: JSON lines (or text) on stderr, secrets redacted, a quiet start,
    no probe access lines. `plain_banner`: print banner records as bare text (None: when
    stderr is a terminal)."""
    handler = logging.StreamHandler()
    formatter: logging.Formatter = (
        JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    if plain_banner if plain_banner is not None else _is_terminal(handler.stream):
        formatter = BannerFormatter(formatter)
    handler.setFormatter(formatter)
    handler.addFilter(QuietStart())
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    access = logging.getLogger("uvicorn.access")
    for old in [f for f in access.filters if isinstance(f, QuietProbes)]:
        access.removeFilter(old)
    access.addFilter(QuietProbes())


def _is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty is not None and isatty())
    except ValueError:  # a closed stream
        return False
