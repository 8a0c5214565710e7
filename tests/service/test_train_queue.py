"""Training jobs run by a trainer elsewhere (GAD_TRAIN_QUEUE, service/train_queue.py): the
service queues `POST /v1/train` on a real Redis, a real `gad worker` process takes it, runs
`gad teach train` and sends its lines back; the version is served and an open stream moves.
No worker: the job fails with the reason and is taken back off the queue. A worker killed
mid-job: the job fails once it has been silent too long."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

import service.train_queue as train_queue
from tests.service.streaming import client
from tests.service.teaching import CARPHONE, add_talk_examples, demo_copy, wait_for
from tests.service.test_pose_package import package_file, png_frame

pytestmark = pytest.mark.integration  # a Redis, a worker process, a training subprocess

FPS = 4.0


@pytest.fixture
def queue_url(redis_url: str) -> Iterator[str]:
    """A Redis database of this file's own (the queue's keys are fixed), emptied around."""
    parts = urlsplit(redis_url)
    url = urlunsplit(parts._replace(path="/14"))
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()


@pytest.fixture
def taught(pose_demo: Path, tmp_path: Path) -> tuple[Path, dict]:
    return demo_copy(pose_demo, tmp_path)


def start_worker(url: str, *more: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "gad", "worker", "--queue", url, "--name", "test", *more]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )


def kill_group(worker: subprocess.Popen) -> None:
    """The worker and the training it runs."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(10)
    if worker.stdout is not None:
        worker.stdout.close()


def test_a_queued_job_is_trained_by_the_worker_and_served(taught, queue_url: str) -> None:
    models, settings = taught
    from runtime.video import read_frames

    frames = [f.rgb for f in read_frames(package_file(*CARPHONE), FPS)]
    worker = start_worker(queue_url, "--once", "--", "--seed", "0")  # passed to teach train
    try:
        with client(models, train_queue=queue_url, **settings) as http:
            add_talk_examples(http)
            with http.websocket_connect("/v1/streams/car") as ws:
                assert ws.receive_json()["model"]["version"] == "1"
                started = http.post("/v1/train", json={})
                assert started.status_code == 202, started.text
                job = wait_for(http, started.json()["id"], {})
                assert job["status"] == "succeeded", (job["error"], job["log"])
                assert job["result"]["version"] == "2" and job["result"]["served"] is True
                assert any(line.get("stage") == "train" for line in job["log"])
                ws.send_text(png_frame(0, frames[0]))
                assert ws.receive_json()["version"] == "2"  # the open stream moved
        out, _ = worker.communicate(timeout=60)
    finally:
        kill_group(worker)
    assert worker.returncode == 0, out.decode()
    assert b"exit 0" in out
    assert (models / "2" / "manifest.json").is_file()


def test_no_trainer_fails_the_job_and_takes_it_back(taught, queue_url: str) -> None:
    models, settings = taught
    with client(models, train_queue=queue_url, train_queue_wait_s=2, **settings) as http:
        add_talk_examples(http)
        started = http.post("/v1/train", json={})
        assert started.status_code == 202, started.text
        job = wait_for(http, started.json()["id"], {})
    assert job["status"] == "failed" and "no trainer took the job within 2 s" in job["error"]
    assert redis.Redis.from_url(queue_url).llen(train_queue.QUEUE) == 0


def test_a_worker_that_dies_mid_job_fails_it(
    taught, queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    models, settings = taught
    monkeypatch.setattr(train_queue, "SILENT_S", 2 * train_queue.BEAT_S)
    worker = start_worker(queue_url)
    try:
        with client(models, train_queue=queue_url, **settings) as http:
            add_talk_examples(http)
            job_id = http.post("/v1/train", json={}).json()["id"]
            deadline = time.monotonic() + 120
            while http.get(f"/v1/jobs/{job_id}").json()["stage"] in ("starting", "queued"):
                assert time.monotonic() < deadline, "the worker never took the job"
                time.sleep(0.2)
            assert http.get(f"/v1/jobs/{job_id}").json()["status"] == "running"
            kill_group(worker)  # mid-job: its training dies with it
            job = wait_for(http, job_id, {})
    finally:
        kill_group(worker)
    assert job["status"] == "failed" and "stopped answering" in job["error"]
    assert not (models / "2").exists()
