"""Training jobs handed to a trainer elsewhere, through Redis: the service's side and the
protocol both sides speak (the trainer's loop is `gad worker`, gad/commands/worker.py).

Why: the serving image has no torch, so in compose or Kubernetes the service cannot run
`gad teach train` itself. With GAD_TRAIN_QUEUE=redis://… it queues the job instead, and a
trainer (the training image running `gad worker --queue redis://…`, sharing the examples
and model volumes at the same paths) runs the very same command and sends its output back
line by line. Everything else — what a job trains, where its version goes, the switch — is
service/jobs.py's, unchanged.

Keys (PREFIX `gad:teach:`):
  queue          list: a job as JSON {id, examples, base, out, steps, eval_videos}; the
                 service LPUSHes, a worker BRPOPs (each job to one worker)
  job:<id>       list: what the worker sends, one JSON object an entry: {"taken": worker}
                 first, then every stdout line of `gad teach train --json` as it printed
                 it ({"stage", "progress", …} then {"result"} or {"error"}), {"beat": t}
                 every BEAT_S while it runs, {"exit": code, "stderr": tail} last
The service reads job:<id> with BLPOP; the job's stage is "queued", then "taken", then the
training's own. A job no worker takes within
GAD_TRAIN_QUEUE_WAIT_S is taken back off the queue and fails ("no trainer took it"); a taken
job whose worker sends nothing for SILENT_S fails ("the trainer stopped answering").
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any

PREFIX = "gad:teach:"
QUEUE = PREFIX + "queue"
BEAT_S = 5.0  # a worker's heartbeat while a job runs
SILENT_S = 30.0  # a taken job whose worker says nothing this long has failed (> BEAT_S)
KEEP_S = 24 * 3600  # a job's list expires a day after its last entry


def job_key(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


@dataclass(frozen=True)
class QueuedJob:
    """What a worker needs to run `gad teach train` for a job (paths as both sides see
    them: the volumes are mounted at the same places)."""

    id: str
    examples: str
    base: str
    out: str
    steps: int
    eval_videos: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> QueuedJob:
        data = json.loads(text)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def command(self, python: str) -> list[str]:
        """The `gad teach train` command line (service/jobs.py runs the same locally)."""
        command = [python, "-m", "gad", "teach", "train", "--examples", self.examples]
        command += ["--base", self.base, "--out", self.out, "--steps", str(self.steps), "--json"]
        if self.eval_videos is not None:
            command += ["--eval-videos", str(self.eval_videos)]
        return command


def protocol_line(raw: bytes | str) -> dict[str, Any] | None:
    """A line of `gad teach train --json` as a dict; None for anything else (a library's
    print)."""
    try:
        line = json.loads(raw)
    except ValueError:
        return None
    return line if isinstance(line, dict) else None


class TrainerGone(RuntimeError):
    """No worker took the job, or the one that did stopped answering."""


async def run_queued(url: str, job: QueuedJob, wait_s: float) -> AsyncIterator[dict[str, Any]]:
    """Queue `job` and yield what its worker sends, ending with its {"exit", "stderr"}.
    TrainerGone when no worker takes it within `wait_s` or the one that did goes silent."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        await client.lpush(QUEUE, job.to_json())
        yield {"stage": "queued"}
        taken = False
        last = time.monotonic()
        while True:
            entry = await client.blpop([job_key(job.id)], timeout=1)
            now = time.monotonic()
            if entry is None:
                if not taken and now - last > wait_s:
                    if await client.lrem(QUEUE, 1, job.to_json()):  # still there: take it back
                        raise TrainerGone(
                            f"no trainer took the job within {wait_s:.0f} s: is a `gad worker "
                            f"--queue` running on this Redis (the compose trainer service)?"
                        )
                    taken, last = True, now  # a worker took it this very moment
                elif taken and now - last > SILENT_S:
                    raise TrainerGone(f"the trainer stopped answering ({SILENT_S:.0f} s silent)")
                continue
            last = now
            message = protocol_line(entry[1])
            if message is None:
                continue
            if "beat" in message:
                continue
            if "taken" in message:
                taken = True
                message = {"stage": "taken", "worker": message["taken"]}
            yield message
            if "exit" in message:
                return
    finally:
        await client.aclose()
