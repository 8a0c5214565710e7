"""A real MQTT broker for the event tests: the one named by $GAD_TEST_MQTT_URL, the
machine's Mosquitto on 127.0.0.1:1883, or a private `mosquitto` started on a free port.

    with MosquittoServer.start(tmp_dir) as broker:   # private: tests may stop and restart it
        broker.url; broker.stop(); broker.restart()
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from bench.launch import free_port

ENV_URL = "GAD_TEST_MQTT_URL"
LOCAL_URL = "mqtt://127.0.0.1:1883"
SETUP_HINT = (
    "run `make setup` (it installs Debian's mosquitto where apt-get runs as root), install "
    "mosquitto yourself, or set GAD_TEST_MQTT_URL=mqtt://host:port"
)


def reachable(url: str, timeout_s: float = 0.5) -> bool:
    """Whether a broker answers an MQTT CONNECT at `url` (a CONNACK that accepts)."""
    parts = urlsplit(url)
    connect = bytes([0x10, 16, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 10, 0, 4]) + b"gadp"
    try:
        with socket.create_connection((parts.hostname, parts.port or 1883), timeout_s) as sock:
            sock.sendall(connect)
            sock.settimeout(timeout_s)
            reply = sock.recv(4)
    except OSError:
        return False
    return len(reply) == 4 and reply[0] == 0x20 and reply[3] == 0


class MosquittoServer:
    """A private mosquitto on a free loopback port; stop/restart keep the port."""

    def __init__(self, folder: Path, port: int, binary: str) -> None:
        self.folder = folder
        self.port = port
        self.binary = binary
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, folder: Path, *, attempts: int = 3) -> Self:
        binary = shutil.which("mosquitto") or next(
            (p for p in ("/usr/sbin/mosquitto",) if Path(p).exists()), None
        )
        if binary is None:
            raise RuntimeError("no mosquitto on PATH to start a test MQTT broker")
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

    def restart(self, timeout_s: float = 10.0) -> None:
        """Start the broker (again) on the same port; wait until it accepts a CONNECT."""
        self.stop()
        config = self.folder / "mosquitto.conf"
        # Persistent: a subscriber's session (clean_session=False) and the QoS 1 messages
        # queued for it survive a restart, as on a site's broker.
        config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {self.folder}/\n"
        )
        log = (self.folder / "mosquitto.log").open("ab")
        self.process = subprocess.Popen(
            [self.binary, "-c", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if reachable(self.url, timeout_s=0.2):
                return
            time.sleep(0.02)
        tail = (self.folder / "mosquitto.log").read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"mosquitto on port {self.port} did not start:\n{tail}")

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
def mqtt_for_tests(folder: Path) -> Iterator[str]:
    """The URL of a broker for the tests, starting a private one if needed; else RuntimeError."""
    env = os.environ.get(ENV_URL)
    if env:
        if not reachable(env, timeout_s=2.0):
            raise RuntimeError(f"{ENV_URL}={env} does not accept an MQTT CONNECT")
        yield env
    elif reachable(LOCAL_URL):
        yield LOCAL_URL
    else:
        with MosquittoServer.start(folder) as server:
            yield server.url
