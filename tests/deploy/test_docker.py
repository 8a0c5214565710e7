"""docker/: the images, the compose stack, Prometheus and Grafana, the GPU smoke script.

Offline, as far as this machine can check without a Docker daemon: hadolint on every
Dockerfile, the real compose binary on the compose files, the Prometheus rules and the
Grafana dashboard against the metrics service.metrics really exports, what the images
COPY against the repository and .dockerignore, the hash locks against pyproject.toml, and
docker/gpu-smoke.sh run end to end against a local `gad serve` through a stand-in for
`docker compose exec`. Every validator also gets a planted error it must catch.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from tests.deploy.validators import (
    DOCKER,
    ENV_EXAMPLE,
    ROOT,
    check_dashboard,
    check_promql,
    check_rules,
    compose,
    compose_model,
    compose_variables,
    copy_sources,
    dockerfile_instructions,
    dockerignore_patterns,
    env_file_keys,
    exported_series,
    is_dockerignored,
    lint_dockerfile,
)

DOCKERFILES = ["Dockerfile", "Dockerfile.cpu", "Dockerfile.train"]
SERVING = {"Dockerfile": "serve-gpu.txt", "Dockerfile.cpu": "serve-cpu.txt"}
STACK = [DOCKER / "compose.yaml"]
CPU_STACK = [*STACK, DOCKER / "compose.cpu.yaml"]
LOCKS = {
    "serve-gpu.txt": ["serve-gpu"],
    "serve-cpu.txt": ["serve"],
    "train.txt": ["train", "serve"],
}


def instructions(name: str) -> list:
    return dockerfile_instructions((DOCKER / name).read_text())


def last(items: list, keyword: str):
    found = [ins for ins in items if ins.keyword == keyword]
    assert found, f"no {keyword}"
    return found[-1]


def stages(items: list) -> dict[str, list]:
    """Stage name → its instructions (FROM line first)."""
    out: dict[str, list] = {}
    current: list = []
    for ins in items:
        if ins.keyword == "FROM":
            current = []
            out[ins.args.split()[-1] if " AS " in ins.args.upper() else str(len(out))] = current
        current.append(ins)
    return out


def lock(name: str) -> dict[str, str]:
    """{package: version} of a hash lock in docker/requirements/."""
    text = (DOCKER / "requirements" / name).read_text()
    return {m[0].lower(): m[1] for m in re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", text, re.M)}


# --- Dockerfiles: hadolint ----------------------------------------------------------------


@pytest.mark.parametrize("name", [*DOCKERFILES, "Dockerfile.baked"])
def test_hadolint_passes(name: str) -> None:
    assert lint_dockerfile(DOCKER / name) == []


PLANTS = {
    # case: (Dockerfile, old text, new text, the rule hadolint must report)
    "latest tag": ("Dockerfile.cpu", "python:3.11.17-slim-trixie", "python:latest", "DL3007"),
    "untagged image": ("Dockerfile.cpu", "python:3.11.17-slim-trixie", "python", "DL3006"),
    "untrusted registry": (
        "Dockerfile",
        "nvidia/cuda:13.0.3-cudnn-runtime-ubuntu24.04",
        "quay.io/someone/cuda:13.0.3",
        "DL3026",
    ),
    "unpinned apt-get": (
        "Dockerfile.cpu",
        "RUN groupadd",
        "RUN apt-get update && apt-get install -y --no-install-recommends curl "
        "&& rm -rf /var/lib/apt/lists/*\nRUN groupadd",
        "DL3008",
    ),
    "cd in RUN": ("Dockerfile", "RUN groupadd", "RUN cd /opt && ls\nRUN groupadd", "DL3003"),
    "root user": ("Dockerfile.train", "USER 10001:10001", "USER root", "DL3002"),
    "pip without pins": (
        "Dockerfile.cpu",
        "RUN python -m venv /opt/venv",
        "RUN python -m venv /opt/venv && pip install --no-cache-dir requests",
        "DL3013",
    ),
    "an inline ignore pragma does not hide it": (
        "Dockerfile",
        "RUN groupadd",
        "# hadolint ignore=DL3003\nRUN cd /opt && ls\nRUN groupadd",
        "DL3003",
    ),
}


@pytest.mark.parametrize("case", PLANTS)
def test_hadolint_catches_a_planted_error(case: str, tmp_path: Path) -> None:
    name, old, new, rule = PLANTS[case]
    text = (DOCKER / name).read_text()
    assert old in text
    planted = tmp_path / name
    planted.write_text(text.replace(old, new, 1))
    problems = lint_dockerfile(planted)
    assert any(f" {rule} " in problem for problem in problems), problems


def test_hadolint_reports_a_syntax_error(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text("FROM python:3.11.17-slim-trixie\nFROM\n")
    assert any("DL1000" in problem for problem in lint_dockerfile(broken))


# --- Dockerfiles: what they copy, what they run -------------------------------------------


@pytest.mark.parametrize("name", DOCKERFILES)
def test_copied_sources_exist_and_reach_the_build_context(name: str) -> None:
    """A moved file or a .dockerignore pattern would break `docker build` here."""
    patterns = dockerignore_patterns(ROOT / ".dockerignore")
    sources = copy_sources(instructions(name))
    assert sources
    for line, source in sources:
        assert (ROOT / source).exists(), f"{name}:{line} copies {source}, which does not exist"
        assert not is_dockerignored(source, patterns), f"{name}:{line}: {source} is dockerignored"


def test_the_copy_check_catches_an_ignored_or_missing_source(tmp_path: Path) -> None:
    patterns = dockerignore_patterns(ROOT / ".dockerignore")
    planted = (
        (DOCKER / "Dockerfile")
        .read_text()
        .replace(
            "COPY service ./service",
            "COPY service ./service\nCOPY tests ./tests\nCOPY nope ./n",
        )
    )
    sources = [source for _, source in copy_sources(dockerfile_instructions(planted))]
    assert [s for s in sources if is_dockerignored(s, patterns)] == ["tests"]
    assert [s for s in sources if not (ROOT / s).exists()] == ["nope"]


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        (".venv/bin/python", True),
        (".cache/gad/demo/models/demo/1/head.onnx", True),
        (".cache/gad/demo-pose/models/demo-pose/1/pose_landmark.onnx", True),
        ("docker/.env", True),
        (".env", True),
        ("service/__pycache__/app.cpython-311.pyc", True),
        (".git/HEAD", True),
        ("runs/x/checkpoint", True),
        ("data/synth/data_info.json", True),
        ("tests/deploy/test_docker.py", True),
        ("docker/requirements/serve-gpu.txt", False),
        ("service/static/index.html", False),
        ("pyproject.toml", False),
        ("README.md", False),
    ],
)
def test_dockerignore_keeps_state_and_secrets_out(path: str, ignored: bool) -> None:
    assert is_dockerignored(path, dockerignore_patterns(ROOT / ".dockerignore")) is ignored


def test_dockerignore_matching_follows_docker() -> None:
    assert is_dockerignored("a/b/c.pyc", ["**/*.pyc"])
    assert is_dockerignored("x.pyc", ["**/*.pyc"])
    assert not is_dockerignored("a/keep.md", ["a", "!a/keep.md"])
    assert is_dockerignored("a/other.md", ["a", "!a/keep.md"])
    assert not is_dockerignored("ab", ["a"])


@pytest.mark.parametrize("name", sorted(SERVING))
def test_serving_image_contract(name: str) -> None:
    items = instructions(name)
    by_stage = stages(items)
    # the default target (the last stage) is the runtime, which mounts the model
    assert list(by_stage)[-1] == "serve" and by_stage["serve"][0].args == "runtime AS serve"
    runtime = by_stage["runtime"]
    user = last(runtime, "USER").args
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), f"non-root numeric user, got {user}"
    env = " ".join(ins.args for ins in runtime if ins.keyword == "ENV")
    for setting in ("GAD_HOST=0.0.0.0", "GAD_PORT=8000", "GAD_MODEL=/models/"):
        assert setting in env
    assert last(runtime, "EXPOSE").args == "8000"
    assert "/healthz" in last(runtime, "HEALTHCHECK").args
    assert json.loads(last(runtime, "CMD").args) == ["gad", "serve"]
    # the builder installs the hash lock, then the project without dependencies
    runs = " ".join(ins.args for ins in by_stage["builder"] if ins.keyword == "RUN")
    assert "--require-hashes" in runs and "--no-deps ." in runs
    copies = " ".join(ins.args for ins in by_stage["builder"] if ins.keyword == "COPY")
    assert f"docker/requirements/{SERVING[name]}" in copies
    # The legacy builder (DOCKER_BUILDKIT=0) builds every stage before its target: none may
    # need what only BuildKit gives (a named build context), nor fail without a model.
    defined = set()
    for stage, body in by_stage.items():
        for ins in body:
            source = re.search(r"--from=(\S+)", ins.args) if ins.keyword == "COPY" else None
            assert source is None or source.group(1) in defined | set(base_images(name)), (
                f"{name}: stage {stage} copies from {source.group(1) if source else ''}"
            )
        defined.add(stage)
    assert "baked" not in by_stage and "model" not in by_stage  # docker/Dockerfile.baked


@pytest.mark.parametrize("name", [*DOCKERFILES, "Dockerfile.baked"])
def test_no_syntax_directive_so_buildkit_needs_no_registry(name: str) -> None:
    """`# syntax=docker/dockerfile:1` makes BuildKit fetch its frontend from Docker Hub even
    when every base image is local: an offline or mirrored site could not build. Without it
    the builder's built-in frontend runs (`--build-arg BUILDKIT_SYNTAX=...` opts in)."""
    for line in (DOCKER / name).read_text().splitlines():
        if not line.startswith("#"):
            break
        assert not re.match(r"#\s*syntax\s*=", line, re.I), f"{name}: {line}"


def test_the_baked_image_copies_its_context_into_models() -> None:
    """docker/Dockerfile.baked: a serving image + the model folder given as the build
    context (works with both builders), owned by the image's user, checked for a package."""
    items = instructions("Dockerfile.baked")
    assert [i.keyword for i in items] == ["ARG", "FROM", "COPY", "RUN"]
    assert items[0].args == "IMAGE=gad-stream:cpu" and items[1].args == "${IMAGE}"
    user = last(instructions("Dockerfile.cpu"), "USER").args
    assert items[2].args == f"--chown={user} . /models/"
    assert "manifest.json" in items[3].args and "exit 1" in items[3].args


def base_images(name: str) -> dict[str, str]:
    """Stage name → image of every FROM that names an image (not scratch, not a stage)."""
    out: dict[str, str] = {}
    stages: set[str] = set()
    for ins in instructions(name):
        if ins.keyword == "FROM":
            image, _, alias = ins.args.partition(" AS ")
            if image != "scratch" and image not in stages:
                out[alias.strip() or image] = image
            stages.add(alias.strip())
    return out


def test_gpu_image_base_matches_onnxruntime_gpu() -> None:
    """PyPI's onnxruntime-gpu >= 1.27 is built for CUDA 13 + cuDNN 9 (its CUDA provider
    links libcudart.so.13 / libcublas.so.13): the base must be a CUDA 13 runtime with cuDNN."""
    cuda = base_images("Dockerfile")["cuda"]
    assert re.fullmatch(r"nvidia/cuda:13\.\d+\.\d+-cudnn-runtime-ubuntu\d+\.\d+", cuda), cuda
    major, minor = (int(part) for part in lock("serve-gpu.txt")["onnxruntime-gpu"].split(".")[:2])
    assert (major, minor) >= (1, 27)
    env = " ".join(ins.args for ins in instructions("Dockerfile") if ins.keyword == "ENV")
    assert "GAD_PROVIDERS=cuda,cpu" in env


def test_every_image_runs_the_same_python() -> None:
    cpu = re.match(r"python:(\d+\.\d+\.\d+)-", base_images("Dockerfile.cpu")["base"]).group(1)
    for name in ("Dockerfile", "Dockerfile.train"):
        args = [ins.args for ins in instructions(name) if ins.keyword == "ARG"]
        assert f"PYTHON_VERSION={cpu}" in args, f"{name}: Python {cpu} like Dockerfile.cpu"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_every_base_image_is_pinned(name: str) -> None:
    images = base_images(name)
    assert images
    for image in images.values():
        assert re.search(r":v?\d+\.\d+\.\d+", image), f"{name}: {image} is not pinned"


def test_training_image() -> None:
    items = instructions("Dockerfile.train")
    copies = " ".join(ins.args for ins in items if ins.keyword == "COPY")
    assert "docker/requirements/train.txt" in copies
    assert json.loads(last(items, "ENTRYPOINT").args) == ["gad"]
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", last(items, "USER").args)


# --- the hash locks ------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*LOCKS, "train-nodeps.txt"])
def test_lock_pins_every_requirement_with_hashes(name: str) -> None:
    text = (DOCKER / "requirements" / name).read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[-1] if text[0] == "#" else text)
    entries = [e for e in entries if e.strip() and not e.lstrip().startswith("#")]
    assert entries
    for entry in entries:
        assert re.match(r"^[A-Za-z0-9_.\-]+(\[[\w,]+\])?==\S+", entry), entry.splitlines()[0]
        assert "--hash=sha256:" in entry, f"{entry.splitlines()[0]} has no hash"


def extra_requirements(extras: list[str]) -> list[Requirement]:
    """The direct requirements of these extras of pyproject.toml, self-references expanded."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional, out, todo, seen = project["optional-dependencies"], [], list(extras), set()
    out += [Requirement(r) for r in project["dependencies"]]
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in optional[extra]:
            requirement = Requirement(text)
            if requirement.name == project["name"]:
                todo += list(requirement.extras)
            else:
                out.append(requirement)
    return out


@pytest.mark.parametrize("name", LOCKS)
def test_lock_satisfies_pyproject(name: str) -> None:
    pinned = lock(name)
    for requirement in extra_requirements(LOCKS[name]):
        key = requirement.name.lower()
        assert key in pinned, f"{name} lacks {requirement} (run docker/lock.sh)"
        assert requirement.specifier.contains(pinned[key], prereleases=True), (
            f"{name} pins {key}=={pinned[key]}, pyproject.toml wants {requirement}: "
            "run docker/lock.sh"
        )


def test_serving_locks_have_no_torch_and_one_onnxruntime() -> None:
    gpu, cpu = lock("serve-gpu.txt"), lock("serve-cpu.txt")
    assert "torch" not in gpu and "torch" not in cpu
    # both wheels own the `onnxruntime` module: they must never share an environment
    assert "onnxruntime-gpu" in gpu and "onnxruntime" not in gpu
    assert "onnxruntime" in cpu and "onnxruntime-gpu" not in cpu


def test_training_lock_has_the_torch_setup_tests_with() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    tested = re.search(r"GAD_TORCH_VERSION:-([\d.]+)", setup).group(1)
    override = (DOCKER / "requirements" / "train-overrides.txt").read_text()
    assert f"torch=={tested}" in override
    train = lock("train.txt")
    assert train["torch"] == tested
    assert "onnxruntime-gpu" not in train  # onnxruntime (CPU) verifies exports
    assert any(name.startswith("nvidia-cudnn") for name in train)  # the CUDA build of torch


def test_package_data_ships_the_files_the_service_reads() -> None:
    """The images install the project non-editable: every non-Python file inside the
    packages (the demo page) must be package data, or GET / fails inside a container."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text()).get("tool", {})
    package_data = config.get("setuptools", {}).get("package-data", {})
    tracked = subprocess.run(
        ["git", "ls-files", "gad", "model", "service", "training"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    data_files = [path for path in tracked if not path.endswith(".py")]
    assert data_files, "expected at least service/static/index.html"
    for path in data_files:
        package, _, inside = path.partition("/")
        patterns = package_data.get(package, []) + package_data.get("*", [])
        assert any(Path(inside).match(p) or inside == p for p in patterns), (
            f"{path} is not in [tool.setuptools.package-data] {package!r}: a wheel (the "
            "Docker images) would not contain it"
        )


# --- compose -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "profiles"),
    [
        (STACK, ()),
        (STACK, ("monitoring", "train", "gateway")),
        (CPU_STACK, ("monitoring", "gateway")),
        ([ROOT / "compose.yaml"], ("monitoring",)),
        ([ROOT / "compose.yaml", DOCKER / "compose.cpu.yaml"], ()),
    ],
    ids=["gpu", "gpu+profiles", "cpu", "root", "root+cpu"],
)
def test_compose_config_is_valid(files: list[Path], profiles: tuple[str, ...]) -> None:
    result = compose("config", "--quiet", files=files, profiles=profiles)
    assert result.ok, result.output


def test_compose_refuses_to_run_without_api_keys(tmp_path: Path) -> None:
    # Everything of .env.example but the keys: compose names the first missing required
    # variable in no fixed order, so only GAD_API_KEYS may be missing here.
    lines = ENV_EXAMPLE.read_text().splitlines()
    env = tmp_path / "no-keys.env"
    env.write_text("\n".join(line for line in lines if not line.startswith("GAD_API_KEYS=")))
    result = compose("config", "--quiet", files=STACK, env_file=env)
    assert not result.ok
    assert "GAD_API_KEYS" in result.output and "docker/.env" in result.output
    assert compose("config", "--quiet", files=STACK, env_file=None).ok is False


def test_every_compose_variable_is_in_the_env_example() -> None:
    assigned, documented = env_file_keys(ENV_EXAMPLE)
    variables = compose_variables(CPU_STACK, profiles=("monitoring", "train", "gateway"))
    for name, variable in variables.items():
        if variable["Required"]:
            assert name in assigned, f"{name} is required: set it in docker/.env.example"
        else:
            assert name in assigned | documented, f"{name}: document it in docker/.env.example"


def test_the_default_model_is_the_served_demo() -> None:
    """The images, the compose stack and docker/.env.example all default to the package
    `gad serve` serves with no --model (gad/demo.py), where `make setup` writes it."""
    from gad.demo import SERVED_KIND, demo_root, package_dir

    served = package_dir(demo_root(ROOT / ".cache" / "gad", kind=SERVED_KIND), kind=SERVED_KIND)
    assert served.name == "demo-pose"
    folder = "../" + served.parent.relative_to(ROOT).as_posix()
    for name in SERVING:
        env = " ".join(ins.args for ins in instructions(name) if ins.keyword == "ENV")
        assert f"GAD_MODEL=/models/{served.name} " in env, name
        assert f" {served.parent.relative_to(ROOT).as_posix()}\n" in (DOCKER / name).read_text()
    baked = (DOCKER / "Dockerfile.baked").read_text()
    assert f" {served.parent.relative_to(ROOT).as_posix()}\n" in baked
    variables = compose_variables(STACK, env_file=None)
    assert variables["GAD_MODELS_DIR"]["DefaultValue"] == folder
    assert variables["GAD_MODEL_PATH"]["DefaultValue"] == served.name
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if re.match(r"^\w+=", line)
    )
    assert example["GAD_MODELS_DIR"] == folder and example["GAD_MODEL_PATH"] == served.name


def test_no_secret_in_the_compose_files() -> None:
    for path in [*CPU_STACK, ROOT / "compose.yaml"]:
        for line in path.read_text().splitlines():
            if re.search(r"(API_KEYS|PASSWORD)\s*:", line):
                assert re.search(r":\s*\$\{\w+:\?", line), f"{path.name}: {line.strip()}"


@pytest.fixture(scope="module")
def stack() -> dict:
    return compose_model(STACK, profiles=("monitoring",))


def test_the_service_gets_one_gpu_redis_and_the_model(stack: dict) -> None:
    gad = stack["services"]["gad"]
    devices = gad["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"capabilities": ["gpu"], "driver": "nvidia", "count": 1}]
    assert gad["build"]["context"] == str(ROOT)
    assert (ROOT / gad["build"]["dockerfile"]).is_file() and gad["build"]["target"] == "serve"
    env = gad["environment"]
    assert env["GAD_REDIS_URL"] == "redis://redis:6379/0"
    assert env["GAD_MODEL"].startswith("/models/")
    assert env["GAD_API_KEYS"] and "change-me" in env["GAD_API_KEYS"]  # from .env.example
    assert gad["depends_on"]["redis"]["condition"] == "service_healthy"
    models = [v for v in gad["volumes"] if v["target"] == "/models"]
    assert models and models[0]["read_only"] and models[0]["type"] == "bind"
    assert [p["target"] for p in gad["ports"]] == [8000]
    # readiness: `up --wait` and `service_healthy` wait for a model loaded and Redis reachable
    assert gad["healthcheck"]["test"][0] == "CMD" and "/readyz" in " ".join(
        gad["healthcheck"]["test"]
    )
    assert gad["read_only"] and gad["cap_drop"] == ["ALL"]


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)(ms|s|m|h)", duration))


def test_shutdown_leaves_time_to_close_streams(stack: dict) -> None:
    """uvicorn waits up to 10 s (GRACEFUL_SHUTDOWN_S in service/server.py) for
    connections while streams are closed with 1012; SIGKILL must not come first."""
    from service.server import GRACEFUL_SHUTDOWN_S

    grace = seconds(stack["services"]["gad"]["stop_grace_period"])
    assert grace >= GRACEFUL_SHUTDOWN_S + 10


def test_redis_is_a_bounded_private_cache(stack: dict) -> None:
    redis = stack["services"]["redis"]
    command = redis["command"]
    option = {command[i]: command[i + 1] for i in range(1, len(command) - 1, 2)}
    assert option["--maxmemory"] == "512mb"
    assert option["--maxmemory-policy"] == "volatile-ttl"  # every key has the stream TTL
    assert option["--save"] == "" and option["--appendonly"] == "no"
    assert redis["image"].startswith("redis:7.") and redis["healthcheck"]["test"]
    assert "ports" not in redis, "Redis must not be published"
    assert list(redis["networks"]) == ["cache"] and stack["networks"]["cache"]["internal"]
    assert redis["deploy"]["resources"]["limits"]["memory"]


def test_the_gateway_profile_runs_the_example_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--profile gateway`: `gad gateway` on the CPU image, the example config mounted
    read-only, streaming to the gad service, its /healthz on the port it publishes."""
    from service.gateway.config import load_config

    model = compose_model(CPU_STACK, profiles=("gateway",))
    gateway = model["services"]["gateway"]
    assert gateway["command"] == ["gad", "gateway", "/etc/gad/gateway.yaml"]
    assert gateway["image"] == "gad-stream:cpu" and "deploy" not in gateway
    assert gateway["depends_on"]["gad"]["condition"] == "service_healthy"
    (mount,) = gateway["volumes"]
    assert mount["target"] == "/etc/gad/gateway.yaml" and mount["read_only"] is True
    assert Path(mount["source"]) == DOCKER / "gateway.example.yaml"
    assert gateway["read_only"] is True and gateway["cap_drop"] == ["ALL"]
    monkeypatch.setenv("GAD_TOKEN", gateway["environment"]["GAD_TOKEN"])
    config = load_config(mount["source"])
    assert gateway["environment"]["GAD_TOKEN"] in model["services"]["gad"]["environment"][
        "GAD_API_KEYS"
    ].split(",")  # the example key is one the service accepts
    assert {c.url.rsplit("/v1/streams/", 1)[0] for c in config.cameras} == {"ws://gad:8000"}
    (published,) = gateway["ports"]
    assert int(published["target"]) == config.listen_port == 9108
    assert f":{config.listen_port}/healthz" in " ".join(gateway["healthcheck"]["test"])


def test_the_cpu_override_drops_the_gpu() -> None:
    gad = compose_model(CPU_STACK)["services"]["gad"]
    assert "deploy" not in gad
    assert gad["build"]["dockerfile"] == "docker/Dockerfile.cpu"
    assert gad["environment"]["GAD_PROVIDERS"] == "cpu"


def test_the_root_compose_file_is_the_docker_stack(stack: dict) -> None:
    root = compose_model([ROOT / "compose.yaml"], profiles=("monitoring",))
    assert root["name"] == stack["name"] == "gad-stream"
    assert root["services"] == stack["services"]


def test_every_image_is_pinned(stack: dict) -> None:
    for name, service in stack["services"].items():
        if "build" not in service:
            assert re.search(r":v?\d+\.\d+\.\d+", service["image"]), f"{name}: {service['image']}"


COMPOSE_PLANTS = {
    # case: (edit of the parsed docker/compose.yaml, text the error must contain)
    "undefined service in depends_on": (
        lambda c: c["services"]["gad"]["depends_on"].update(
            {"ghost": {"condition": "service_healthy"}}
        ),
        "ghost",
    ),
    "unknown key": (lambda c: c["services"]["redis"].update({"imagee": "redis"}), "imagee"),
    "bad device count": (
        lambda c: c["services"]["gad"]["deploy"]["resources"]["reservations"]["devices"][0].update(
            {"count": "lots"}
        ),
        "count",
    ),
    "undefined network": (
        lambda c: c["services"]["redis"].update({"networks": ["nowhere"]}),
        "nowhere",
    ),
    "bad port": (lambda c: c["services"]["gad"].update({"ports": ["80:80:80:80"]}), "80:80"),
}


@pytest.mark.parametrize("case", COMPOSE_PLANTS)
def test_compose_catches_a_planted_error(case: str, tmp_path: Path) -> None:
    edit, expected = COMPOSE_PLANTS[case]
    folder = tmp_path / "docker"
    shutil.copytree(DOCKER, folder, ignore=shutil.ignore_patterns("requirements", ".env"))
    config = yaml.safe_load((folder / "compose.yaml").read_text())
    edit(config)
    (folder / "compose.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = compose(
        "config", "--quiet", files=[folder / "compose.yaml"], env_file=folder / ".env.example"
    )
    assert not result.ok, f"compose accepted the {case}"
    assert expected in result.output, result.output


def test_the_env_file_with_the_keys_is_kept_out_of_git_and_images() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", "docker/.env"], cwd=ROOT, check=False)
    assert ignored.returncode == 0, "add docker/.env to .gitignore: it holds the API keys"
    assert is_dockerignored("docker/.env", dockerignore_patterns(ROOT / ".dockerignore"))


# --- Prometheus ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def series() -> dict[str, set[str]]:
    return exported_series()


@pytest.fixture(scope="module")
def rules_doc() -> dict:
    return yaml.safe_load((DOCKER / "prometheus" / "rules.yml").read_text())


def test_exported_series_are_what_the_endpoint_serves(series: dict[str, set[str]]) -> None:
    assert series["gad_frame_latency_seconds_bucket"] == {"le"}
    assert series["gad_frames_dropped_total"] == {"reason"}
    assert series["gad_active_streams"] == set()
    assert "gad_frames_processed" not in series  # counters are exported as *_total


def test_prometheus_scrapes_the_service(stack: dict) -> None:
    config = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    gad = jobs["gad"]
    port = stack["services"]["gad"]["ports"][0]["target"]
    assert gad["static_configs"][0]["targets"] == [f"gad:{port}"]
    assert gad.get("metrics_path", "/metrics") == "/metrics"
    prometheus = stack["services"]["prometheus"]
    mounts = {v["target"]: Path(v["source"]) for v in prometheus["volumes"] if v["type"] == "bind"}
    config_arg = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    assert mounts[config_arg.split("=", 1)[1]] == DOCKER / "prometheus" / "prometheus.yml"
    for rule_file in config["rule_files"]:
        assert rule_file in mounts and mounts[rule_file].is_file(), f"{rule_file} is not mounted"


def test_rules_are_valid_and_read_real_metrics(rules_doc: dict, series: dict) -> None:
    problems, recorded = check_rules(rules_doc, series)
    assert problems == []
    rules = [rule for group in rules_doc["groups"] for rule in group["rules"]]
    exprs = {r["record"]: " ".join(r["expr"].split()) for r in rules if "record" in r}
    p95 = exprs["job:gad_frame_latency_seconds:p95_1m"]
    assert p95.startswith("histogram_quantile(0.95,") and "gad_frame_latency_seconds_bucket" in p95
    assert "gad_frames_processed_total" in exprs["job:gad_frames_processed:rate1m"]
    assert "gad_frames_dropped_total" in exprs["job:gad_frames_dropped:ratio_rate1m"]
    assert "reason" in recorded["job_reason:gad_frames_dropped:rate1m"]


RULE_PLANTS = {
    "metric without its unit": (
        "gad_frame_latency_seconds_bucket[1m]",
        "gad_frame_latency_bucket[1m]",
        "unknown series 'gad_frame_latency_bucket'",
    ),
    "counter without _total": (
        "rate(gad_frames_processed_total[1m])",
        "rate(gad_frames_processed[1m])",
        "unknown series 'gad_frames_processed'",
    ),
    "label the metric lacks": ("by (job, reason)", "by (job, cause)", "label 'cause'"),
    "unbalanced brackets": (
        "sum by (job) (gad_active_streams)",
        "sum by (job) (gad_active_streams",
        "unbalanced",
    ),
    "record name not level:metric:operation": (
        "record: job:gad_active_streams:sum",
        "record: gad_active_streams_sum",
        "level:metric:operation",
    ),
}


@pytest.mark.parametrize("case", RULE_PLANTS)
def test_rules_check_catches_a_planted_error(case: str, series: dict) -> None:
    old, new, expected = RULE_PLANTS[case]
    text = (DOCKER / "prometheus" / "rules.yml").read_text()
    assert old in text
    problems, _ = check_rules(yaml.safe_load(text.replace(old, new, 1)), series)
    assert any(expected in problem for problem in problems), problems


def test_promql_check_reads_strings_and_durations_correctly(series: dict) -> None:
    assert check_promql('up{job="gad:8000 by (x)"} == 0', series) == []
    assert check_promql('rate(gad_cache_seconds_count{op=~"get|set"}[5m] offset 1h)', series) == []
    assert check_promql("gad_active_streams > 1e3", series) == []
    assert check_promql('gad_active_streams{reason="x"}', series) != []


# --- Grafana -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads((DOCKER / "grafana" / "dashboards" / "gad-stream.json").read_text())


@pytest.fixture(scope="module")
def datasources() -> list[dict]:
    path = DOCKER / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
    return yaml.safe_load(path.read_text())["datasources"]


@pytest.fixture(scope="module")
def queryable(series: dict, rules_doc: dict) -> dict[str, set[str]]:
    return series | check_rules(rules_doc, series)[1]


def test_dashboard_queries_real_series(dashboard: dict, datasources: list, queryable) -> None:
    uids = {source["uid"] for source in datasources}
    assert check_dashboard(dashboard, queryable, datasource_uids=uids) == []
    queries = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    for needed in (
        "job:gad_frames_processed:rate1m",  # frames/s
        "job:gad_frame_latency_seconds:p50_1m",
        "job:gad_frame_latency_seconds:p95_1m",
        "job:gad_frame_latency_seconds:p99_1m",
        "job_reason:gad_frames_dropped:rate1m",  # drops by reason
        "job:gad_active_streams:sum",
        "job:gad_batch_size:mean_1m",
    ):
        assert needed in queries, f"the dashboard does not show {needed}"


DASHBOARD_PLANTS = {
    "unknown metric": ("job:gad_active_streams:sum", "gad_streams_open", "unknown series"),
    "unprovisioned datasource": ('"gad-prometheus"', '"other-prometheus"', "not provisioned"),
    "unbalanced query": (
        "sum(job:gad_active_streams:sum)",
        "sum(job:gad_active_streams:sum",
        "unbalanced",
    ),
}


@pytest.mark.parametrize("case", DASHBOARD_PLANTS)
def test_dashboard_check_catches_a_planted_error(
    case: str, dashboard: dict, datasources: list, queryable
) -> None:
    old, new, expected = DASHBOARD_PLANTS[case]
    text = json.dumps(dashboard)
    assert old in text
    planted = json.loads(text.replace(old, new, 1))
    uids = {source["uid"] for source in datasources}
    problems = check_dashboard(planted, queryable, datasource_uids=uids)
    assert any(expected in problem for problem in problems), problems


def test_dashboard_json_that_does_not_parse_is_an_error() -> None:
    text = (DOCKER / "grafana" / "dashboards" / "gad-stream.json").read_text()
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.replace('"panels":', '"panels"', 1))


def test_grafana_provisioning_matches_compose(stack: dict, datasources: list) -> None:
    (source,) = datasources
    assert source["url"] == "http://prometheus:9090" and "prometheus" in stack["services"]
    provider = yaml.safe_load(
        (DOCKER / "grafana" / "provisioning" / "dashboards" / "gad-stream.yml").read_text()
    )["providers"][0]
    grafana = stack["services"]["grafana"]
    mounts = {v["target"]: Path(v["source"]) for v in grafana["volumes"] if v["type"] == "bind"}
    assert mounts[provider["options"]["path"]] == DOCKER / "grafana" / "dashboards"
    assert mounts["/etc/grafana/provisioning"] == DOCKER / "grafana" / "provisioning"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert Path(home).name in {p.name for p in (DOCKER / "grafana" / "dashboards").iterdir()}
    assert grafana["profiles"] == ["monitoring"]


# --- the scripts ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gpu-smoke.sh", "lock.sh"])
def test_scripts_are_strict_bash(name: str) -> None:
    path = DOCKER / name
    assert path.stat().st_mode & stat.S_IXUSR, f"{name} is not executable"
    text = path.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    subprocess.run(["bash", "-n", str(path)], check=True)


FAKE_COMPOSE = """\
#!{python}
# Stands in for `docker compose ... exec -T [-e K=V]... SERVICE COMMAND...`: runs COMMAND
# here, as the container would, with the -e variables added.
import os, subprocess, sys
args = sys.argv[1:]
args = args[args.index("exec") + 1:]
env = dict(os.environ)
while args[0].startswith("-"):
    flag = args.pop(0)
    if flag == "-e":
        key, _, value = args.pop(0).partition("=")
        env[key] = value
service = args.pop(0)
assert service == "gad", service
sys.exit(subprocess.call(args, env=env))
"""


@pytest.fixture(scope="module")
def smoke_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`gad serve` on the model the compose stack serves by default (the pose demo, its
    BlazePose encoder inside) with an API key, and the environment under which
    docker/gpu-smoke.sh sees it as the compose service `gad`."""
    from bench.launch import served
    from gad.demo import SERVED_KIND, ensure_demo, package_dir

    package = package_dir(ensure_demo(SERVED_KIND), kind=SERVED_KIND)
    folder = tmp_path_factory.mktemp("smoke")
    fake = folder / "fake-compose"
    fake.write_text(FAKE_COMPOSE.format(python=sys.executable))
    fake.chmod(0o755)
    key = "smoke-test-key"
    env = {"GAD_API_KEYS": key, "GAD_PROVIDERS": "cpu", "GAD_THREADS": "1"}
    with served(package, env=env) as server:
        port = server.url.rsplit(":", 1)[1]
        yield (
            os.environ
            | env
            | {
                "GAD_PORT": port,
                "COMPOSE": f"{fake} -f docker/compose.yaml",
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                "GAD_SMOKE_SECONDS": "8",
                "GAD_SMOKE_REALTIME": "0",
                "GAD_SMOKE_WAIT_S": "20",
            }
        )


def run_smoke(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(DOCKER / "gpu-smoke.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_gpu_smoke_script_end_to_end(smoke_server: dict[str, str]) -> None:
    """The script's whole path against a real server; only the provider differs from a GPU
    host (EXPECT_PROVIDER=CPUExecutionProvider here)."""
    done = run_smoke(smoke_server | {"EXPECT_PROVIDER": "CPUExecutionProvider"})
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "ok   /readyz: model demo-pose/" in out
    assert "on CPUExecutionProvider" in out
    sent = re.search(r"(\d+) frames sent, (\d+) labels .* 0 errors", out)
    assert sent and int(sent.group(1)) == int(sent.group(2)) >= 30, out  # 8 s at 4 fps
    assert re.search(r"round trip\s+[\d.]+\s+[\d.]+\s+[\d.]+", out), out
    assert re.search(r"server\s+[\d.]+\s+[\d.]+\s+[\d.]+", out), out
    assert out.rstrip().endswith("ok   smoke test passed")


def test_gpu_smoke_script_fails_without_the_cuda_provider(smoke_server: dict[str, str]) -> None:
    done = run_smoke(smoke_server | {"EXPECT_PROVIDER": "CUDAExecutionProvider"})
    assert done.returncode != 0
    assert "expected CUDAExecutionProvider first" in done.stderr
    assert "smoke test passed" not in done.stdout


def test_gpu_smoke_script_fails_when_the_service_is_down(smoke_server: dict[str, str]) -> None:
    dead = smoke_server["COMPOSE"].split()[0] + ".dead"
    Path(dead).write_text("#!/bin/sh\nexit 1\n")
    Path(dead).chmod(0o755)
    done = run_smoke(smoke_server | {"COMPOSE": dead})
    assert done.returncode != 0 and "is not running" in done.stderr


def test_the_smoke_script_help_names_its_settings() -> None:
    header = textwrap.dedent((DOCKER / "gpu-smoke.sh").read_text().split("set -euo")[0])
    for name in ("COMPOSE", "EXPECT_PROVIDER", "GAD_SMOKE_SECONDS", "GAD_SMOKE_REALTIME"):
        assert name in header
