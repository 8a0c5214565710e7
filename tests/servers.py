"""Private servers for tests (tests/redis_server.py, tests/mosquitto_server.py): a binary
started in a folder of its own on a free loopback port, waited for until it answers, stopped
and restarted on the same port; the rule that picks a server for a test run (the one named
in the environment, else the machine's own, else a private one); and a fixture's way of
failing with a setup hint when none can be had.

    class MyServer(LocalServer):   # program, role, what, log_name, probe, url, command()
        ...
    with MyServer.start(tmp_dir) as server:
        server.url; server.stop(); server.restart()
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import ClassVar, Self, TypeVar

import pytest

from bench.launch import free_port

T = TypeVar("T")


class LocalServer:
    """A private server process on a free loopback port, in its own folder; stop/restart
    keep the port. A subclass names its program, its log and how to ask it (`probe`)."""

    program: ClassVar[str]  # the binary's name on PATH
    role: ClassVar[str]  # what the server is, in error messages
    paths: ClassVar[tuple[str, ...]] = ()  # where else it may be installed
    what: ClassVar[str]  # "a test Redis", in the error when there is no binary
    log_name: ClassVar[str]  # in the folder: the server's output

    def __init__(self, folder: Path, port: int, binary: str) -> None:
        self.folder = folder
        self.port = port
        self.binary = binary
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def probe(url: str, timeout_s: float) -> bool:
        """Whether a server of this kind answers at `url`."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        raise NotImplementedError

    def command(self) -> list[str]:
        """The command line that starts the server (writing any config file it reads)."""
        raise NotImplementedError

    @classmethod
    def start(cls, folder: Path, *, attempts: int = 3) -> Self:
        """Start on a free port (another, if someone takes it first); fail with a hint."""
        binary = shutil.which(cls.program) or next((p for p in cls.paths if Path(p).exists()), None)
        if binary is None:
            raise RuntimeError(f"no {cls.program} on PATH to start {cls.what}")
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
        """Start the server (again) on the same port and wait until it answers."""
        self.stop()
        self.folder.mkdir(parents=True, exist_ok=True)
        command = self.command()
        log = (self.folder / self.log_name).open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self.probe(self.url, 0.2):
                return
            time.sleep(0.02)
        tail = (self.folder / self.log_name).read_text(errors="replace")[-2000:]
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
def server_for_tests(
    folder: Path,
    server: type[LocalServer],
    *,
    env_url: str,
    local_url: str,
    refused: Callable[[str], str],
) -> Iterator[str]:
    """The URL of a server for the tests: $`env_url`'s (RuntimeError(`refused(url)`) if it
    does not answer), else the machine's own at `local_url` if it answers, else a private
    `server` started in `folder` (RuntimeError if it cannot start)."""
    env = os.environ.get(env_url)
    if env:
        if not server.probe(env, 2.0):
            raise RuntimeError(refused(env))
        yield env
    elif server.probe(local_url, 0.5):
        yield local_url
    else:
        with server.start(folder) as private:
            yield private.url


def started_or_fail(
    start: Callable[[Path], AbstractContextManager[T]], *, prefix: str, failure: str, hint: str
) -> Iterator[T]:
    """A fixture's body: what `start(folder)` enters, in a temporary folder named `prefix`...,
    closed after the test; if it cannot start (RuntimeError), the test fails with
    `failure (why); hint`."""
    with tempfile.TemporaryDirectory(prefix=prefix) as folder, contextlib.ExitStack() as stack:
        try:
            value = stack.enter_context(start(Path(folder)))
        except RuntimeError as error:
            problem = str(error)
        else:
            yield value
            return
    pytest.fail(f"{failure} ({problem}); {hint}", pytrace=False)
