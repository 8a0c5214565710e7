"""Child processes on free ports for tests, benchmarks and smoke checks: `gad serve`
(`served`) and a private `redis-server` (`private_redis`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import GADError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    url: str  # http://127.0.0.1:PORT
    process: subprocess.Popen
    log: Path

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)


@contextlib.contextmanager
def served(
    model: Path, *, env: dict[str, str] | None = None, args: list[str] | None = None
) -> Iterator[Server]:
    """Start `gad serve --model MODEL` on 127.0.0.1:<free port>; yield it once /readyz
    answers 200; stop it (SIGTERM, then SIGKILL) on exit."""
    port = free_port()
    command = [sys.executable, "-m", "gad.cli", "serve", "--model", str(model)]
    command += ["--port", str(port), "--log-format", "text", *(args or [])]
    with tempfile.NamedTemporaryFile(prefix="gad-serve-", suffix=".log", delete=False) as log:
        log_path = Path(log.name)
        process = subprocess.Popen(
            command, env=os.environ | (env or {}), stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise GADError(f"gad serve did not start:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield Server(url, process, log_path)
    finally:
        stop(process, timeout=15)
        log_path.unlink(missing_ok=True)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """A `redis-server` of our own on a free port (no persistence); its URL."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        raise GADError("no redis-server on PATH: install it (make setup) or pass --redis-url")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="gad-bench-redis-") as folder:
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", folder]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        url = f"redis://127.0.0.1:{port}/0"
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    with redis.Redis.from_url(url, socket_timeout=0.5) as client:
                        client.ping()
                    break
                except redis.RedisError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise GADError(f"redis-server on port {port} did not start") from None
                    time.sleep(0.05)
            yield url
        finally:
            stop(process, timeout=10)


def stop(process: subprocess.Popen, *, timeout: float) -> None:
    """SIGTERM, then SIGKILL when it has not exited within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
