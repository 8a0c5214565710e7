"""`gad worker --queue redis://HOST:6379/2`: the trainer of a service that cannot train itself
(the serving image has no torch). It takes the jobs `POST /v1/train` queues
(GAD_TRAIN_QUEUE, service/train_queue.py), one at a time, runs `gad teach train` for each —
the same command the service runs where it can — and sends its output back line by line,
with a heartbeat. Run it from the training install (the training image; `make setup`'s
.venv), with the examples and model folders mounted at the paths the service sees.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

from gad.subcommands import Subcommands

if TYPE_CHECKING:
    from service.train_queue import QueuedJob


def register(commands: Subcommands) -> None:
    commands.add(
        "worker",
        build,
        help="train the jobs a service queues (GAD_TRAIN_QUEUE), one at a time",
        description="Take training jobs from the Redis list a `gad serve` with "
        "GAD_TRAIN_QUEUE=URL fills (POST /v1/train), run `gad teach train` for each and send "
        "its progress and result back through the same Redis. Needs the training install "
        "and the service's examples and model folders at the same paths.",
    )


def build(worker: argparse.ArgumentParser) -> None:
    worker.add_argument("--queue", required=True, help="the Redis URL (GAD_TRAIN_QUEUE)")
    worker.add_argument("--once", action="store_true", help="exit after one job")
    worker.add_argument("--name", default=None, help="this worker's name (default: host:pid)")
    worker.add_argument(
        "teach_args",
        nargs=argparse.REMAINDER,
        metavar="-- TEACH ARGS",
        help="more `gad teach train` arguments for every job, after `--`: where this host "
        "keeps the base's training data and checkpoint when the manifest's paths are the "
        "service's (`-- --mocap /cache/demo-pose/mocap --base-checkpoint "
        "/cache/demo-pose/run/checkpoint` in compose)",
    )
    worker.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import importlib.util

    import redis

    from runtime.errors import ConfigError
    from service.train_queue import KEEP_S, QUEUE, QueuedJob, job_key

    if importlib.util.find_spec("torch") is None:
        raise ConfigError("gad worker trains: it needs the training install (torch)")
    client = redis.Redis.from_url(args.queue)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ConfigError(f"cannot reach the queue's Redis: {exc}") from exc
    name = args.name or f"{socket.gethostname()}:{os.getpid()}"
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    say(f"worker {name}: waiting for jobs on {QUEUE}")
    while not stopping.is_set():
        try:
            popped = client.brpop([QUEUE], timeout=1)
        except redis.RedisError as exc:  # Redis restarting: wait and go on
            say(f"queue unreachable ({exc}); retrying")
            time.sleep(2)
            continue
        if popped is None:
            continue
        job = QueuedJob.from_json(popped[1])
        key = job_key(job.id)

        def send(message: dict[str, object], key: str = key) -> None:
            client.rpush(key, json.dumps(message))
            client.expire(key, KEEP_S)

        send({"taken": name})
        started = time.monotonic()
        say(f"job {job.id}: {job.examples} on {job.base}")
        extra = args.teach_args[1:] if args.teach_args[:1] == ["--"] else args.teach_args
        code, stderr = train(job, send, stopping, extra)
        send({"exit": code, "stderr": stderr[-4000:]})
        say(f"job {job.id}: exit {code} in {time.monotonic() - started:.0f} s")
        if args.once:
            break
    return 0


def train(
    job: QueuedJob,
    send: Callable[[dict[str, object]], None],
    stopping: threading.Event,
    extra: list[str],
) -> tuple[int, str]:
    """Run the job's `gad teach train`, sending each JSON line and a heartbeat; the exit code
    and stderr. SIGTERM (stopping) kills it."""
    from service.train_queue import BEAT_S, protocol_line

    process = subprocess.Popen(
        [*job.command(sys.executable), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    stderr_pipe = process.stderr
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.append(stderr_pipe.read()), daemon=True)
    reader.start()
    done = threading.Event()

    def beat() -> None:
        while not done.wait(BEAT_S):
            if stopping.is_set():
                process.kill()
                return
            send({"beat": time.time()})

    beater = threading.Thread(target=beat, daemon=True)
    beater.start()
    for line in process.stdout:
        if (message := protocol_line(line)) is not None:  # not a library's print
            send(message)
    code = process.wait()
    done.set()
    reader.join(5)
    stderr = "".join(errors)
    if stopping.is_set():
        stderr += "\nthe trainer was stopped (SIGTERM)"
    return code, stderr


def say(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)
