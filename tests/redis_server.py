"""A real Redis for tests: the one named by $GAD_TEST_REDIS_URL, the machine's on
127.0.0.1:6379, or a private `redis-server` started on a free port (no persistence).

    with RedisServer.start(tmp_dir) as server:   # private: tests may stop and restart it
        server.url; server.stop(); server.restart()
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import redis

from bench.launch import free_port as free_port  # tests/service/test_cache.py imports it here
from service.cache import redact_url
from tests.servers import LocalServer, server_for_tests

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


class RedisServer(LocalServer):
    """A private redis-server process on a free port; stop/restart keep the port."""

    program = role = "redis-server"
    what = "a test Redis"
    log_name = "redis.log"
    probe = staticmethod(reachable)

    @property
    def socket_path(self) -> Path:
        return self.folder / "redis.sock"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        return f"unix://{self.socket_path}?db=0"

    def server_args(self) -> list[str]:
        """redis-server's arguments besides port, bind address, persistence and folder."""
        return ["--unixsocket", str(self.socket_path)]

    def command(self) -> list[str]:
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            *self.server_args(),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.folder),
        ]  # fmt: skip


def redis_for_tests(folder: Path) -> AbstractContextManager[str]:
    """The URL of a Redis for the tests, starting a private one if needed; else RuntimeError."""
    return server_for_tests(
        folder,
        RedisServer,
        env_url=ENV_URL,
        local_url=LOCAL_URL,
        refused=lambda url: f"{ENV_URL}={redact_url(url)} does not answer PING",
    )
