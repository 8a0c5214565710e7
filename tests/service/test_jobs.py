"""Training jobs' routes and bookkeeping (service/jobs.py, service/api/jobs.py); the whole
teach flow through a real `gad teach train` is tests/service/test_teach_flow.py."""

from __future__ import annotations

import json

from service.jobs import Job, Jobs, summary
from service.train_queue import protocol_line
from tests.service.streaming import client


def test_a_result_reads_in_one_line() -> None:
    result = {
        "new_classes": ["wave hello"],
        "held_out_accuracy": {"wave hello": 0.875, "background": 0.9},
        "old_map": {"before": 0.7749, "after": 0.7701},
        "seconds": {"total": 94.2},
    }
    assert summary(result) == (
        "wave hello: 88 % of held-out frames; old classes 77.5 → 77.0 mAP; 94 s"
    )
    assert summary({"new_classes": ["x"], "held_out_accuracy": {"x": None}}) == (
        "x: no held-out example"
    )


def test_progress_lines_move_the_job_and_other_output_is_ignored(tmp_path) -> None:
    jobs = Jobs.__new__(Jobs)  # the line parser alone: no versions, no process
    job = Job("j1", None, tmp_path, "1", tmp_path, serve=False)
    lines = [
        b"Loading weights: 100%\n",
        json.dumps({"stage": "train", "progress": 0.4, "step": 40}).encode(),
        b"[1, 2, 3]",
        json.dumps({"result": {"version": "2"}}).encode(),
    ]
    for raw in lines:
        if (message := protocol_line(raw)) is not None:  # what both runners yield
            Jobs._message(jobs, job, message)
    assert job.stage == "train" and job.progress == 0.4
    assert job.result == {"version": "2"} and len(job.lines) == 2
    Jobs._message(jobs, job, {"error": "boom", "stage": "export"})
    assert job.error == "boom" and job.stage == "export"


def test_train_without_examples_is_refused_and_unknown_jobs_are_404(tiny_package, tmp_path) -> None:
    _, package = tiny_package
    with client(package, data_dir=tmp_path) as http:
        refused = http.post("/v1/train", json={})
        assert refused.status_code == 422 and "no examples" in refused.json()["detail"]
        assert http.get("/v1/jobs").json() == {"jobs": []}
        assert http.get("/v1/jobs/nope").status_code == 404
