"""Structured logs: one JSON object per line, with stream id and seq where they apply.

    log.info("label", extra={"stream": "cam-1", "seq": 17})
API keys never reach a log line: the service logs tenants (key digests), never keys.
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


def configure(level: str = "INFO", *, json_lines: bool = True) -> None:
    handler = logging.StreamHandler()
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
