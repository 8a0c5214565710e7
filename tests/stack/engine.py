"""A private Docker engine and the stand-in base images for the stack test (test_stack.py).

The engine is Debian's `docker.io` (installed with apt-get when missing), started by hand
as root with everything of its own: data root, exec root, socket, pid file, containerd
namespace, its default bridge `gad-stack0` and the address pool its networks come from.
`Engine.stop` ends it by its pid and removes all of that again (containers, images,
volumes, networks go with the data root), the bridge, the iptables rules that name the
bridge or the pool, and (when no other dockerd runs) the chains, jumps and FORWARD policy
dockerd added, and puts net.ipv4.ip_forward back.

No image registry is reachable here, so every image the project's Dockerfiles and compose
files name is a stand-in built locally, tagged with that exact name, so that those files are
built and run unchanged: one Debian bookworm root filesystem (mmdebstrap, cached by its
recipe) imported with `docker import`, then small Dockerfiles on top of it:

- the Python base of docker/Dockerfile.cpu (python:3.11.x-slim-...): Debian's python3.11 with
  /usr/local/bin/python, like the official image's layout (its Python is 3.11.2, not the
  tag's patch release);
- Redis (Debian's redis-server 7.0, with the official image's `--protected-mode no`) and
  Prometheus (Debian's prometheus 2.42 at the official image's user, workdir and entrypoint,
  with wget for the compose healthcheck);
- for docker/Dockerfile: uv from its PyPI wheel (the binary the ghcr.io image holds) and a
  CUDA base without CUDA: Debian's python3.11 laid out as a uv-managed Python in
  /opt/python, because `uv python install` downloads python-build-standalone from GitHub,
  which is not reachable (the build is run with PYTHON_VERSION=3.11, which that satisfies).

Every stand-in trusts the host's CA bundle (builds behind a TLS-inspecting proxy do) and
gets the host's pip index when one is configured, so pip and uv reach the registry from the
default bridge.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

STATE = Path("/run/gad-stack")
DATA_ROOT = Path("/var/lib/gad-stack/docker")
SOCKET = STATE / "docker.sock"
PIDFILE = STATE / "dockerd.pid"
BRIDGE = "gad-stack0"
BRIDGE_ADDRESS = "172.29.250.1/24"
POOL = "172.30.0.0/16"
OURS = ("172.29.250.", "172.30.", BRIDGE)  # what an iptables rule of this engine names
NAMESPACE = "gad-stack"
TABLES = ("filter", "nat")

HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
SUITE = "bookworm"
PACKAGES = (
    "python3.11",
    "python3.11-venv",
    "python3-distutils",  # python3.11-venv's python3.11-distutils
    "ca-certificates",
    "redis-server",
    "prometheus",
    "wget",  # the Prometheus healthcheck of docker/compose.yaml
)
MMDEBSTRAP = [
    "--variant=minbase",
    "--format=tar",
    *(f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("man", "doc", "locale", "info")),
    '--customize-hook=mkdir -p "$1/prometheus" && chown 65534:65534 "$1/prometheus"',
]


class EngineUnavailable(Exception):
    """No engine can run here (not root, no apt, dockerd did not start): skip, or fail in CI."""


@dataclass
class Step:
    name: str
    seconds: float


@dataclass
class Log:
    """Step timings, printed as they finish (`pytest -s` shows them live)."""

    start: float = field(default_factory=time.monotonic)
    steps: list[Step] = field(default_factory=list)

    def done(self, name: str, since: float) -> float:
        seconds = time.monotonic() - since
        self.steps.append(Step(name, seconds))
        self.say(f"{name}: {seconds:.1f} s")
        return seconds

    def say(self, text: str) -> None:
        print(f"[stack {time.monotonic() - self.start:6.1f} s] {text}", file=sys.stderr, flush=True)


def sh(
    command: Sequence[str | Path],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 600,
    check: bool = True,
    log: Path | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command; its output goes to `log` (appended) or is captured."""
    args = [str(part) for part in command]
    if log is None:
        done = subprocess.run(
            args, env=env, cwd=cwd, timeout=timeout, capture_output=True, text=True, input=stdin
        )
    else:
        with log.open("a") as out:
            out.write(f"\n$ {' '.join(args)}\n")
            out.flush()
            done = subprocess.run(
                args,
                env=env,
                cwd=cwd,
                timeout=timeout,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                input=stdin,
            )
    if check and done.returncode != 0:
        tail = log.read_text()[-3000:] if log else (done.stdout + done.stderr)[-3000:]
        raise AssertionError(f"{' '.join(args)} exited {done.returncode}:\n{tail}")
    return done


def apt_install(*packages: str) -> None:
    """Debian's packages, as `make setup` installs redis-server: apt-get, as root."""
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    if sh(install, env=env, check=False, timeout=900).returncode != 0:
        sh(["apt-get", "update", "-q"], env=env, timeout=600)
        sh(install, env=env, timeout=900)


class Engine:
    """dockerd on private roots; `docker(...)` and `compose(...)` talk to it alone."""

    def __init__(self, logs: Path, log: Log) -> None:
        self.logs = logs
        self.log = log
        self.pid: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.forwarding: str | None = None
        self.iptables: dict[str, list[str]] = {}  # `iptables -S` of each table before the start
        self.cli = ""
        self.env: dict[str, str] = {}

    # --- start and stop -------------------------------------------------------------------

    def start(self) -> None:
        if os.geteuid() != 0:
            raise EngineUnavailable("the stack test needs root (it installs and starts dockerd)")
        if shutil.which("apt-get") is None or shutil.which("ip") is None:
            raise EngineUnavailable("the stack test needs Debian's apt-get and iproute2")
        since = time.monotonic()
        missing = [
            package
            for binary, package in (("dockerd", "docker.io"), ("mmdebstrap", "mmdebstrap"))
            if shutil.which(binary) is None
        ]
        if missing:
            try:
                apt_install(*missing)
            except (AssertionError, subprocess.TimeoutExpired) as exc:
                raise EngineUnavailable(f"could not install {' '.join(missing)}: {exc}") from exc
            self.log.done(f"apt-get install {' '.join(missing)}", since)
        # docker.io's own CLI, the daemon's version: another `docker` first on PATH (a newer
        # static CLI) wants the buildx plugin for BuildKit, which Debian 12 does not package.
        self.cli = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
        self.clean_stale()
        STATE.mkdir(parents=True, exist_ok=True)
        DATA_ROOT.mkdir(parents=True, exist_ok=True)
        self.forwarding = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
        self.iptables = {table: iptables_rules(table) for table in TABLES}
        sh(["ip", "link", "add", BRIDGE, "type", "bridge"])
        sh(["ip", "addr", "add", BRIDGE_ADDRESS, "dev", BRIDGE])
        sh(["ip", "link", "set", BRIDGE, "up"])
        since = time.monotonic()
        command = [
            "dockerd",
            f"--data-root={DATA_ROOT}",
            f"--exec-root={STATE / 'exec'}",
            f"--pidfile={PIDFILE}",
            f"--host=unix://{SOCKET}",
            f"--bridge={BRIDGE}",
            f"--default-address-pool=base={POOL},size=24",
            f"--containerd-namespace={NAMESPACE}",
            f"--containerd-plugins-namespace={NAMESPACE}-plugins",
            "--log-level=warn",
        ]
        with (self.logs / "dockerd.log").open("w") as out:
            process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.pid, self.process = process.pid, process
        config = STATE / "cli-config"  # not the host user's ~/.docker
        config.mkdir(exist_ok=True)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": str(STATE),
            "DOCKER_HOST": f"unix://{SOCKET}",
            "DOCKER_CONFIG": str(config),
        }
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if self.docker("version", check=False, timeout=10).returncode == 0:
                self.log.done(f"dockerd started (pid {self.pid}, data root {DATA_ROOT})", since)
                return
            time.sleep(0.5)
        tail = (self.logs / "dockerd.log").read_text()[-2000:]
        self.stop()
        raise EngineUnavailable(f"dockerd did not start:\n{tail}")

    def clean_stale(self) -> None:
        """What a stack test killed before its teardown left behind (never a live one)."""
        if PIDFILE.exists():
            with contextlib.suppress(ValueError, OSError):
                pid = int(PIDFILE.read_text().strip())
                if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"dockerd"):
                    raise AssertionError(
                        f"a stack test's dockerd (pid {pid}) is running: another `make "
                        "test-stack`? Wait for it, or stop it by that pid."
                    )
        self.remove_state()

    def stop(self) -> None:
        """End the engine by its pid; remove its state, bridge, iptables rules."""
        since = time.monotonic()
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                if self.process is not None:
                    self.process.wait(30)
                elif not wait_exit(self.pid, 30):
                    raise subprocess.TimeoutExpired("dockerd", 30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                if self.process is not None:
                    self.process.wait(10)
            self.pid, self.process = None, None
            self.log.done("dockerd stopped", since)
            since = time.monotonic()
        self.remove_state()
        self.restore_iptables()
        if self.forwarding is not None:
            Path("/proc/sys/net/ipv4/ip_forward").write_text(self.forwarding)
            self.forwarding = None
        self.log.done("data root (every image), bridge and iptables rules removed", since)

    def remove_state(self) -> None:
        # Shims of containers a killed dockerd left (started by this test: our namespace).
        for pid in processes_naming(f"-namespace {NAMESPACE} "):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for mount in reversed(mounts_under(STATE, DATA_ROOT.parent)):
            sh(["umount", "-l", mount], check=False)
        shutil.rmtree(DATA_ROOT.parent, ignore_errors=True)
        shutil.rmtree(STATE, ignore_errors=True)
        if sh(["ip", "link", "show", BRIDGE], check=False).returncode == 0:
            sh(["ip", "link", "delete", BRIDGE], check=False)
        for table in TABLES:
            for rule in iptables_rules(table):
                if rule.startswith("-A ") and any(mark in rule for mark in OURS):
                    sh(["iptables", "-t", table, *split_rule("-D" + rule[2:])], check=False)

    def restore_iptables(self) -> None:
        """Undo what dockerd added to iptables: its chains and jumps and the FORWARD policy
        (DROP, when it turned forwarding on), unless another engine runs and uses them."""
        if not self.iptables or any_process_named("dockerd"):
            return
        for table, before in self.iptables.items():
            now = iptables_rules(table)
            added = [rule for rule in now if rule not in before]
            for rule in reversed([r for r in added if r.startswith("-A ")]):
                sh(["iptables", "-t", table, *split_rule("-D" + rule[2:])], check=False)
            for rule in [r for r in added if r.startswith("-N ")]:
                sh(["iptables", "-t", table, "-F", rule.split()[1]], check=False)
                sh(["iptables", "-t", table, "-X", rule.split()[1]], check=False)
            for rule in [r for r in before if r.startswith("-P ") and r not in now]:
                sh(["iptables", "-t", table, *rule.split()], check=False)
        self.iptables = {}

    # --- the CLIs ------------------------------------------------------------------------

    def docker(self, *args: str | Path, **kwargs) -> subprocess.CompletedProcess[str]:
        env = self.env | kwargs.pop("extra_env", {})
        return sh([self.cli, *args], env=env, **kwargs)

    def build(
        self, name: str, *args: str | Path, buildkit: bool, log: str
    ) -> subprocess.CompletedProcess[str]:
        """`docker build ARGS` with BuildKit or the legacy builder; output in logs/LOG."""
        since = time.monotonic()
        done = self.docker(
            "build",
            *(["--progress=plain"] if buildkit else []),
            *args,
            extra_env={"DOCKER_BUILDKIT": "1" if buildkit else "0"},
            log=self.logs / log,
            check=False,
            timeout=900,
        )
        builder = "BuildKit" if buildkit else "the legacy builder"
        if done.returncode == 0:
            self.log.done(f"{name} built with {builder}", since)
        return done

    def image_exists(self, name: str) -> bool:
        return self.docker("image", "inspect", name, check=False).returncode == 0


def wait_exit(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            waited, _ = os.waitpid(pid, os.WNOHANG)
            if waited == pid:
                return True
        except ChildProcessError:  # not our child (or reaped): poll /proc
            if not Path(f"/proc/{pid}").exists():
                return True
        time.sleep(0.2)
    return False


def processes_naming(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if text in cmdline:
                    found.append(int(entry.name))
    return found


def any_process_named(name: str) -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == name:
                    return True
    return False


def mounts_under(*roots: Path) -> list[str]:
    lines = Path("/proc/mounts").read_text().splitlines()
    points = [line.split()[1] for line in lines if len(line.split()) > 1]
    return [p for p in points if any(p == str(r) or p.startswith(f"{r}/") for r in roots)]


def iptables_rules(table: str) -> list[str]:
    return sh(["iptables", "-t", table, "-S"], check=False).stdout.splitlines()


def split_rule(rule: str) -> list[str]:
    """An `iptables -S` line as arguments (comments are quoted)."""
    import shlex

    return shlex.split(rule)


# --- the stand-in base images ---------------------------------------------------------------


def pip_index_env() -> dict[str, str]:
    """The host's pip index, when it has one the containers can use (not a local file)."""
    index = os.environ.get("PIP_INDEX_URL", "")
    if not index:
        done = sh([sys.executable, "-m", "pip", "config", "get", "global.index-url"], check=False)
        index = done.stdout.strip() if done.returncode == 0 else ""
    if not index or index.startswith("file:"):
        return {}
    return {"PIP_INDEX_URL": index, "UV_DEFAULT_INDEX": index}


def rootfs(cache: Path, log: Log, logs: Path) -> Path:
    """The Debian root filesystem tarball, made once per recipe (cached in `cache`)."""
    recipe = json.dumps([SUITE, PACKAGES, MMDEBSTRAP])
    tar = cache / f"rootfs-{SUITE}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}.tar"
    if tar.exists():
        log.say(f"stand-in root filesystem: cached {tar} (delete it to rebuild)")
        return tar
    cache.mkdir(parents=True, exist_ok=True)
    for old in cache.glob("rootfs-*.tar*"):
        old.unlink()
    since = time.monotonic()
    partial = tar.with_suffix(".tar.partial")
    sh(
        ["mmdebstrap", *MMDEBSTRAP, f"--include={','.join(PACKAGES)}", SUITE, partial],
        log=logs / "mmdebstrap.log",
        timeout=1200,
    )
    partial.rename(tar)
    log.done(f"stand-in root filesystem (Debian {SUITE}, mmdebstrap) made: {tar}", since)
    return tar


@dataclass(frozen=True)
class Names:
    """The image names the project's files use, read from them."""

    python: str  # docker/Dockerfile.cpu's base
    cuda: str  # docker/Dockerfile's cuda stage
    uv: str  # docker/Dockerfile's uv stage
    redis: str  # docker/compose.yaml
    prometheus: str
    python_minor: str  # "3.11", from docker/Dockerfile's PYTHON_VERSION


def stand_ins(engine: Engine, names: Names, cache: Path, work: Path) -> None:
    """Every base image the builds and the stack need, made locally and tagged."""
    log = engine.log
    tar = rootfs(cache, log, engine.logs)
    since = time.monotonic()
    engine.docker("import", tar, "gad-stack/debian:bookworm", timeout=600)
    log.done("root filesystem imported", since)
    started = time.monotonic()
    env = {"LANG": "C.UTF-8", "SSL_CERT_FILE": str(HOST_CA), "PIP_CERT": str(HOST_CA)}
    env |= pip_index_env()
    env_line = "ENV " + " ".join(f"{k}={v}" for k, v in env.items())
    contexts = {
        names.python: [
            "FROM gad-stack/debian:bookworm",
            "COPY host-ca.crt /etc/ssl/certs/ca-certificates.crt",
            "RUN ln -s /usr/bin/python3.11 /usr/local/bin/python"
            " && ln -s /usr/bin/python3.11 /usr/local/bin/python3",
            env_line,
            'CMD ["python3"]',
        ],
        names.redis: [
            "FROM gad-stack/debian:bookworm",
            "WORKDIR /data",
            "USER redis",
            # the official image turns protected mode off (it listens on a private network)
            'ENTRYPOINT ["/bin/sh", "-c", "exec \\"$0\\" \\"$@\\" --protected-mode no"]',
            'CMD ["redis-server"]',
        ],
        names.prometheus: [
            "FROM gad-stack/debian:bookworm",
            "USER 65534:65534",
            "WORKDIR /prometheus",
            'ENTRYPOINT ["/usr/bin/prometheus"]',
            'CMD ["--config.file=/etc/prometheus/prometheus.yml", '
            '"--storage.tsdb.path=/prometheus"]',
        ],
        names.uv: ["FROM scratch", "COPY uv uvx /"],
        names.cuda: [
            "FROM gad-stack/debian:bookworm",
            "COPY host-ca.crt /etc/ssl/certs/ca-certificates.crt",
            env_line,
            # Debian's python3.11 where `uv python install` would put python-build-standalone
            "RUN set -e; v=$(python3.11 -c 'import platform; print(platform.python_version())');"
            " d=/opt/python/cpython-$v-linux-x86_64-gnu; mkdir -p $d/bin $d/lib;"
            " cp /usr/bin/python3.11 $d/bin/; ln -s python3.11 $d/bin/python3;"
            " ln -s python3.11 $d/bin/python; cp -a /usr/lib/python3.11 $d/lib/;"
            " rm -rf $d/lib/python3.11/dist-packages; $d/bin/python3 -c 'import ssl, venv'",
        ],
    }
    for name, lines in contexts.items():
        folder = work / re.sub(r"[^\w.-]", "_", name)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "Dockerfile").write_text("\n".join(lines) + "\n")
        shutil.copy(HOST_CA, folder / "host-ca.crt")
        if name == names.uv:
            uv_binaries(names.uv.rsplit(":", 1)[1], folder, engine.logs)
        done = engine.build(f"stand-in {name}", "-t", name, folder, buildkit=False, log="bases.log")
        assert done.returncode == 0, (engine.logs / "bases.log").read_text()[-3000:]
    log.done("stand-in base images tagged", started)


def uv_binaries(version: str, folder: Path, logs: Path) -> None:
    """uv and uvx from PyPI's uv wheel: what ghcr.io/astral-sh/uv:VERSION holds."""
    wheels = folder / "wheel"
    pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
    wheel = ["--platform=manylinux2014_x86_64", "--python-version=3.11", f"uv=={version}"]
    sh([*pip, *wheel, "-d", wheels], log=logs / "bases.log", timeout=300)
    with zipfile.ZipFile(next(wheels.glob("uv-*.whl"))) as wheel:
        for member in wheel.namelist():
            if re.search(r"\.data/scripts/uvx?$", member):
                target = folder / Path(member).name
                target.write_bytes(wheel.read(member))
                target.chmod(0o755)
    shutil.rmtree(wheels)
