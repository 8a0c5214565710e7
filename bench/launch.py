"""Run `gad serve` as a child process on a free port (tests, benchmarks, smoke checks)."""

from __future__ import annotations

import contextlib
import os
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
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_path.unlink(missing_ok=True)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False
