"""Training jobs: a new version of the served model from a tenant's examples, trained outside
the torch-free service process.

The service starts `python -m gad teach train --examples … --base … --out … --json` as a
subprocess (training/teach.py; where the training install — torch — is present, as in
`make setup`'s .venv and the training image) and reads its stdout, one JSON object a line:
`{"stage", "progress", …}` while it runs, `{"result": {…}}` or `{"error": …}` last. A
subprocess, not a thread: a crash of the training code (or its memory) never takes the
service down. Where the service has no training install (the serving image has no torch:
compose, Kubernetes), GAD_TRAIN_QUEUE names a Redis and a trainer elsewhere runs the same
command (`gad worker --queue`, the training image; service/train_queue.py), sending its lines
back; the examples and model volumes are mounted at the same paths on both.

Where the new version goes: with at most one API key (one user: the service is theirs), into
the served model folder, and the service switches to it when it is verified
(service/versions.py: open streams move at a frame boundary). With several keys, each
tenant's versions go to its own folder beside its examples
(GAD_DATA_DIR/<tenant>/<model>.versions/), trained from the version that tenant is served,
and the service serves the new one to that tenant only (service/tenants.py).

One job runs at a time per process; a job's state lives in memory (`GET /v1/jobs/{id}`)
and ends with the process (the subprocess is killed).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from service.errors import Conflict, NotFound
from service.settings import Settings
from service.tenants import TenantModels
from service.train_queue import QueuedJob, protocol_line, run_queued

log = logging.getLogger(__name__)

Status = Literal["queued", "running", "succeeded", "failed"]
KEEP_LINES = 20


class TrainingUnavailable(Conflict):
    """This install cannot train (no torch): the job is refused."""


@dataclass
class Job:
    id: str
    tenant: str | None
    examples: Path
    base: str  # the base version
    out: Path
    serve: bool  # switch the service to the result
    status: Status = "queued"
    stage: str = "queued"
    progress: float = 0.0
    created: float = field(default_factory=time.time)
    finished: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    lines: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "stage": self.stage,
            "progress": round(self.progress, 4),
            "created": self.created,
            "finished": self.finished,
            "base": self.base,
            "serve": self.serve,
            "result": self.result,
            "error": self.error,
            "log": self.lines[-KEEP_LINES:],
        }


def can_train() -> bool:
    """Whether this install has the training code's dependencies (found, not imported)."""
    return importlib.util.find_spec("torch") is not None


class Jobs:
    """The process's training jobs (module doc)."""

    def __init__(self, tenants: TenantModels, settings: Settings) -> None:
        self.tenants = tenants
        self.settings = settings
        self.jobs: dict[str, Job] = {}
        self.running: asyncio.Task[None] | None = None
        self.process: asyncio.subprocess.Process | None = None

    def get(self, job_id: str, tenant: str | None) -> Job:
        job = self.jobs.get(job_id)
        if job is None or job.tenant != tenant:
            raise NotFound(f"no training job {job_id!r} for this key")
        return job

    def of(self, tenant: str | None) -> list[Job]:
        return [job for job in self.jobs.values() if job.tenant == tenant]

    def start(self, tenant: str | None, examples: Path) -> Job:
        """A job on `tenant`'s `examples`, from the version it is served now."""
        if self.settings.train_queue is None and not can_train():
            raise TrainingUnavailable(
                "this install cannot train (no torch): run `gad teach train` where the "
                "training install is (make setup), or set GAD_TRAIN_QUEUE to the Redis a "
                "trainer reads (`gad worker --queue`; compose's trainer service: docs/teach.md)"
            )
        if self.running is not None and not self.running.done():
            raise Conflict("a training job is running: one at a time (GET /v1/jobs)")
        versions = self.tenants.loaded(tenant)
        current = versions.current.package
        own = self.tenants.separate or versions.folder is None
        # Several keys: the tenant's own folder, served to it. A fixed version folder
        # (GAD_MODEL names one version): the same folder, not switched to (no versions).
        out = self.tenants.folder(tenant) if own else versions.folder
        assert out is not None
        serve = self.tenants.separate or versions.folder is not None
        job = Job(uuid.uuid4().hex[:12], tenant, examples, current.version, out, serve)
        self.jobs[job.id] = job
        self.running = asyncio.create_task(self._run(job, current.folder))
        return job

    async def close(self) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        if self.running is not None:
            self.running.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.running

    async def _run(self, job: Job, base: Path) -> None:
        queued = QueuedJob(
            job.id,
            str(job.examples),
            str(base),
            str(job.out),
            self.settings.teach_steps,
            self.settings.teach_eval_videos,
        )
        job.status, job.stage = "running", "starting"
        where = self.settings.train_queue
        log.info("training job %s on %s", job.id, "a trainer (queue)" if where else "this host")
        try:
            if where is None:
                messages = self._subprocess(queued)
            else:
                messages = run_queued(where, queued, self.settings.train_queue_wait_s)
            code, stderr = None, ""
            async for message in messages:
                if "exit" in message:
                    code, stderr = message["exit"], str(message.get("stderr", ""))
                else:
                    self._message(job, message)
            if job.result is None and job.error is None:
                tail = stderr.splitlines()[-1] if stderr else ""
                job.error = f"the training process exited {code} without a result: {tail}"
            if job.result is not None:
                job.result["summary"] = summary(job.result)
            if job.result is not None and job.serve:
                version = str(job.result.get("version", ""))
                job.stage = "serving"
                await self.tenants.switch(job.tenant, version)
                job.result["served"] = True
        except Exception as exc:  # the job fails, the service goes on
            job.error = job.error or str(exc)
        finally:
            self.process = None
            job.finished = time.time()
            job.status = "succeeded" if job.error is None and job.result else "failed"
            if job.status == "succeeded":
                job.stage, job.progress = "done", 1.0
                if not job.serve and job.result is not None:
                    job.result.setdefault("served", False)
            log.info("training job %s %s", job.id, job.status)

    async def _subprocess(self, queued: QueuedJob) -> AsyncIterator[dict[str, Any]]:
        """`gad teach train` here: its stdout's JSON lines, then {"exit", "stderr"}."""
        command = queued.command(sys.executable)
        log.info("training job %s: %s", queued.id, " ".join(command))
        process = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=1 << 20,
        )
        self.process = process
        assert process.stdout is not None and process.stderr is not None
        errors = asyncio.create_task(process.stderr.read())
        async for raw in process.stdout:
            if (message := protocol_line(raw)) is not None:
                yield message
        code = await process.wait()
        yield {"exit": code, "stderr": (await errors).decode(errors="replace").strip()}

    def _message(self, job: Job, line: dict[str, Any]) -> None:
        job.lines = [*job.lines, line][-KEEP_LINES:]
        if "result" in line and isinstance(line["result"], dict):
            job.result = line["result"]
        elif "error" in line:
            job.error = str(line["error"])
        if "stage" in line:
            job.stage = str(line["stage"])
        if isinstance(line.get("progress"), (int, float)):
            job.progress = float(line["progress"])


def summary(result: dict[str, Any]) -> str:
    """One line for a person: the new classes' held-out accuracy, the old classes' mAP."""
    parts = []
    for name, accuracy in (result.get("held_out_accuracy") or {}).items():
        if name in (result.get("new_classes") or ()):
            held = f"{100 * accuracy:.0f} % of held-out frames" if accuracy is not None else None
            parts.append(f"{name}: {held or 'no held-out example'}")
    old = result.get("old_map") or {}
    if "before" in old and "after" in old:
        parts.append(f"old classes {100 * old['before']:.1f} → {100 * old['after']:.1f} mAP")
    seconds = (result.get("seconds") or {}).get("total")
    if seconds:
        parts.append(f"{seconds:.0f} s")
    return "; ".join(parts)
