"""A real Redis for tests: the one named by $GAD_TEST_REDIS_URL, the machine's on
127.0.0.1:6379, or a private `redis-server` started on a free port (no persistence).

    with RedisServer.start(tmp_dir) as server:   # private: tests may stop and restart it
        server.url; server.stop(); server.restart()
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import redis

from bench.launch import free_port
from service.cache import redact_url

ENV_URL = "GAD_TEST_REDIS_URL"
LOCAL_URL = "redis://127.0.0.1:6379/0"
SETUP_HINT = (
    "run `make setup` (it installs Debian's redis-server where apt-get runs as root), "
    "install redis-server yourself, or set GAD_TEST_REDIS_URL=redis://host:port/db"
)


def reachable(url: str, timeout_s: float = 0.5) -> bool:
    """Whether a Redis answers PING at `url`."""
    client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def delete_prefix(url: str, prefix: str) -> int:
    """Delete every key under `prefix` (a test run's namespace); how many there were."""
    with redis.Redis.from_url(url, socket_timeout=5) as client:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        return len(keys)


class RedisServer:
    """A private redis-server process on a free port; stop/restart keep the port."""

    role = "redis-server"  # in error messages

    def __init__(self, folder: Path, port: int, binary: str) -> None:
        self.folder = folder
        self.port = port
        self.binary = binary
        self.socket_path = folder / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        return f"unix://{self.socket_path}?db=0"

    @classmethod
    def start(cls, folder: Path, *, attempts: int = 3) -> Self:
        """Start on a free port (another, if someone takes it first); fail with a hint."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("no redis-server on PATH to start a test Redis")
        folder.mkdir(parents=True, exist_ok=True)
        error = ""
        for _ in range(attempts):
            server = cls(folder, free_port(), binary)
            try:
                server.restart()
                return server
            except RuntimeError as exc:
                error = str(exc)
        raise RuntimeError(error)

    def server_args(self) -> list[str]:
        """redis-server's arguments besides port, bind address, persistence and folder."""
        return ["--unixsocket", str(self.socket_path)]

    def restart(self, timeout_s: float = 10.0) -> None:
        """Start the server (again) on the same port and wait until it answers PING."""
        self.stop()
        self.folder.mkdir(parents=True, exist_ok=True)
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                *self.server_args(),
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.folder),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if reachable(self.url, timeout_s=0.2):
                return
            time.sleep(0.02)
        tail = (self.folder / "redis.log").read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"{self.role} on port {self.port} did not start:\n{tail}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def redis_for_tests(folder: Path) -> Iterator[str]:
    """The URL of a Redis for the tests, starting a private one if needed; else RuntimeError."""
    env = os.environ.get(ENV_URL)
    if env:
        if not reachable(env, timeout_s=2.0):
            raise RuntimeError(f"{ENV_URL}={redact_url(env)} does not answer PING")
        yield env
    elif reachable(LOCAL_URL):
        yield LOCAL_URL
    else:
        with RedisServer.start(folder) as server:
            yield server.url
