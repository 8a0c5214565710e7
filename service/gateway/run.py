"""`gad gateway CONFIG`: many cameras, each isolated (its own reader thread, its own stream
task), one small HTTP listener for `/metrics` (Prometheus) and `/healthz` (JSON: every
camera's state), and a JSON line on stderr for every state change.

`/healthz` answers 200 while the gateway's event loop runs, whatever the cameras do (a
restart of the gateway does not bring a camera back; the per-camera states in the body and
in `/metrics` say which is down).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.gateway.camera import CameraRunner
from service.gateway.config import GatewayConfig
from service.gateway.metrics import GatewayMetrics
from service.logs import JsonFormatter, RedactSecrets

log = logging.getLogger("gad.gateway")
MAX_REQUEST_BYTES = 8192


class Gateway:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.metrics = GatewayMetrics()
        self.runners = [CameraRunner(camera, metrics=self.metrics) for camera in config.cameras]
        self.port: int | None = None  # bound port, once listening
        self.stop_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "cameras": {runner.camera.id: runner.status.as_dict() for runner in self.runners},
        }

    async def run(self, *, handle_signals: bool = False) -> None:
        """Run every camera until `stop()` (or SIGTERM / SIGINT with `handle_signals`)."""
        self._loop = loop = asyncio.get_running_loop()
        self.stop_event = stop = asyncio.Event()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
        server = await asyncio.start_server(
            self._http, self.config.listen_host, self.config.listen_port
        )
        self.port = int(server.sockets[0].getsockname()[1])
        log.info(
            "gateway listening on %s:%d with %d cameras",
            self.config.listen_host, self.port, len(self.runners),
            extra={"gateway": {"state": "started", "port": self.port,
                               "cameras": [r.camera.id for r in self.runners]}},
        )  # fmt: skip
        tasks = [
            asyncio.create_task(runner.run(), name=f"camera-{runner.camera.id}")
            for runner in self.runners
        ]
        try:
            await stop.wait()
        finally:
            for runner in self.runners:
                runner.stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            server.close()
            await server.wait_closed()
            log.info("gateway stopped", extra={"gateway": {"state": "stopped"}})

    def stop(self) -> None:
        """Stop every camera and the listener (from any thread)."""
        if self._loop is not None and self.stop_event is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self.stop_event.set)

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            if len(head) > MAX_REQUEST_BYTES:
                raise ValueError("request too large")
            method, path, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            path = path.split("?", 1)[0]
            if method not in ("GET", "HEAD"):
                status, ctype, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
            elif path == "/metrics":
                status, ctype = "200 OK", CONTENT_TYPE_LATEST
                body = generate_latest(self.metrics.registry)
            elif path == "/healthz":
                status, ctype = "200 OK", "application/json"
                body = json.dumps(self.health()).encode()
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"/metrics or /healthz\n"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}"
                "\r\nConnection: close\r\n\r\n".encode()
                + (b"" if method == "HEAD" else body)
            )
            await writer.drain()
        except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError):
            pass
        except asyncio.LimitOverrunError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class GatewayJsonFormatter(JsonFormatter):
    """The service's JSON lines, with the gateway's state-change fields at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "gateway", None)
        if not isinstance(fields, dict):
            return line
        entry = json.loads(line)
        entry |= fields
        return json.dumps(entry, default=str)


def configure_logs(level: str = "INFO", *, json_lines: bool = True) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        GatewayJsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("websockets").setLevel(logging.WARNING)


def run_gateway(config: GatewayConfig) -> int:
    asyncio.run(Gateway(config).run(handle_signals=True))
    return 0


def metrics_text(metrics: GatewayMetrics) -> str:
    return generate_latest(metrics.registry).decode()
