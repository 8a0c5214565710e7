"""Helpers for the action-event tests: real receivers (Redis Streams, an MQTT subscriber, a
webhook server, an SSE reader), an app served by a real uvicorn in a thread, and the
comparison of a stream's events with `/classify`'s segments."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
import redis
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from bench.launch import free_port
from gad.backends import open_backend
from service.app import create_app
from service.events import signature
from service.settings import Settings
from tests.model.helpers import FEATURE_DIM
from tests.mosquitto_server import SETUP_HINT, MosquittoServer, mqtt_for_tests
from tests.servers import started_or_fail
from tests.service.streaming import features_message

FPS = 4.0
SECRET = "webhook-secret"


# --- brokers -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mqtt_url() -> Iterator[str]:
    """$GAD_TEST_MQTT_URL, else 127.0.0.1:1883, else a mosquitto started for the run."""
    yield from started_or_fail(
        mqtt_for_tests,
        prefix="gad-mqtt-",
        failure="no MQTT broker for the event tests",
        hint=SETUP_HINT,
    )


@pytest.fixture
def private_mosquitto() -> Iterator[MosquittoServer]:
    """A mosquitto of this test's own on a free port: stop and restart it at will."""
    yield from started_or_fail(
        MosquittoServer.start,
        prefix="gad-mqtt-",
        failure="cannot start a private mosquitto",
        hint=SETUP_HINT,
    )


# --- the model and its rows (fixtures: a test module assigns them, as mqtt_url) ----------


# The segment rule that makes every run of one label a segment: the tiny random model's
# probabilities rarely reach the default rule's 0.7 (DISPLAY_RULE, tuned on the pose demo), and
# these tests are about delivery, not thresholds (test_events.py tests thresholds too).
RUNS = {"event_min_score": 0.0, "event_min_frames": 1, "event_max_gap": 0}


@pytest.fixture(autouse=True)
def plain_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Settings of a test that imports this fixture takes RUNS unless it names its own."""
    for name, value in RUNS.items():
        monkeypatch.setenv(f"GAD_{name.upper()}", str(value))


@pytest.fixture(scope="module")
def package(tiny_package: tuple[Path, Path]) -> Path:
    """The tiny GAD model's package (tests/conftest.py)."""
    return tiny_package[1]


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    """48 random feature rows (seed 5): a stream with several segments."""
    return np.random.default_rng(5).normal(size=(48, FEATURE_DIM)).astype(np.float32)


def dead_url(scheme: str) -> str:
    """A URL nothing listens on (a sink that is down for the whole test)."""
    return f"{scheme}://127.0.0.1:{free_port()}" + ("/0" if scheme == "redis" else "/gad")


# --- receivers ---------------------------------------------------------------------------


def redis_events(url: str, key: str) -> list[dict[str, Any]]:
    """Every event in the Redis stream `key`, oldest first."""
    with redis.Redis.from_url(url, socket_timeout=5) as client:
        return [json.loads(fields[b"data"]) for _, fields in client.xrange(key)]


def wait_until(check: Callable[[], bool], timeout_s: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what or check}"
        time.sleep(0.05)


class MqttSubscriber:
    """A real MQTT client (paho) subscribed to `topic` at QoS 1, collecting (topic, event);
    `persistent`: its session outlives a broker restart (with what was published meanwhile:
    `reconnect` comes back to it under the same client id)."""

    def __init__(self, url: str, topic: str, *, persistent: bool = False) -> None:
        import secrets

        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 1883
        self.topic, self.persistent = topic, persistent
        self.client_id = f"gad-test-{secrets.token_hex(4)}"
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.subscribed = threading.Event()
        self.client = self._connect()

    def _connect(self) -> Any:
        import paho.mqtt.client as mqtt

        self.subscribed.clear()
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=not self.persistent,
        )
        client.reconnect_delay_set(0.1, 0.5)
        client.on_connect = lambda c, *a: c.subscribe(self.topic, qos=1)
        client.on_subscribe = lambda *a: self.subscribed.set()
        client.on_message = lambda c, u, m: self.messages.append((m.topic, json.loads(m.payload)))
        client.connect(self.host, self.port)
        client.loop_start()
        assert self.subscribed.wait(10), "MQTT subscription not acknowledged"
        return client

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for _, event in self.messages]

    def reconnect(self) -> None:
        """After a broker restart: a new connection under the same client id, so a
        persistent session's queued messages arrive (paho's own retry is not relied on)."""
        self.close()
        self.client = self._connect()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Webhook:
    """A real HTTP receiver: answers the statuses in `plan` in turn (then 200), checks each
    request's signature, and keeps the events it accepted."""

    def __init__(self, plan: list[int] | None = None) -> None:
        self.plan = list(plan or [])
        self.attempts: list[int] = []  # the status each POST got
        self.accepted: list[dict[str, Any]] = []
        self.bad_signatures = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if self.headers.get("x-gad-signature") != signature(SECRET, body):
                    hook.bad_signatures += 1
                status = hook.plan.pop(0) if hook.plan else 200
                hook.attempts.append(status)
                if status == 200:
                    hook.accepted.append(json.loads(body))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- the service -------------------------------------------------------------------------


@contextlib.contextmanager
def uvicorn_app(package: Path, **settings: Any) -> Iterator[str]:
    """The app on `package` served by a real uvicorn in a thread (streaming responses, SSE);
    its base URL."""
    port = free_port()
    config = Settings(model=package, providers=("cpu",), log_json=False, port=port, **settings)
    app = create_app(config, backend=open_backend(config))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 60, "uvicorn to start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


class SseReader:
    """`GET /v1/events` read in a thread: the events as they come."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.status = 0
        self.open = threading.Event()
        self.client = httpx.Client(timeout=httpx.Timeout(5, read=None))
        self.thread = threading.Thread(target=self._read, args=(url, headers or {}), daemon=True)
        self.thread.start()
        assert self.open.wait(10), "SSE did not answer"

    def _read(self, url: str, headers: dict[str, str]) -> None:
        with (
            contextlib.suppress(httpx.HTTPError),
            self.client.stream("GET", url, headers=headers) as response,
        ):
            self.status = response.status_code
            self.content_type = response.headers.get("content-type", "")
            self.open.set()
            for line in response.iter_lines():
                if line.startswith("data: "):
                    self.events.append(json.loads(line[6:]))

    def close(self) -> None:
        self.client.close()


def stream_and_end(ws: Any, rows: np.ndarray, *, start: int = 0) -> list[dict[str, Any]]:
    """Send rows as feature frames at FPS, then `end`; the label replies."""
    replies = []
    for seq, row in enumerate(rows, start=start):
        ws.send_json(features_message(row, seq=seq, ts=seq / FPS))
        replies.append(ws.receive_json())
    ws.send_json({"type": "end"})
    assert ws.receive_json()["type"] == "end"
    return replies


def classify_segments(http: Any, rows: np.ndarray) -> list[dict[str, Any]]:
    response = http.post("/classify", json={"fps": FPS, "features": rows.tolist()})
    assert response.status_code == 200, response.text
    segments: list[dict[str, Any]] = response.json()["segments"]
    return segments


def as_segments(events: list[dict[str, Any]]) -> list[tuple[int, float, float]]:
    """The segments a stream's `ended` events report, in order (one per segment id)."""
    seen, out = set(), []
    for event in events:
        if event["event"] == "ended" and event["id"] not in seen:
            seen.add(event["id"])
            out.append((event["index"], event["start"], event["end"]))
    return out


def spans(segments: list[dict[str, Any]]) -> list[tuple[int, float, float]]:
    return [(s["index"], s["start"], s["end"]) for s in segments]


def check_pairs(events: list[dict[str, Any]]) -> None:
    """Each segment has one `started` and one `ended` id; copies of an id are identical."""
    by_id: dict[str, dict[str, Any]] = {}
    for event in events:
        assert by_id.setdefault(event["id"], event) == event, "one id, two different events"
    segments = {e["segment"] for e in events}
    for segment in segments:
        assert {f"{segment}:started", f"{segment}:ended"} <= set(by_id), segment


def metric(text: str, name: str, **labels: str) -> float:
    """A sample's value in /metrics text (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0
