"""A training run started in the background stops cleanly on SIGINT or SIGTERM: where it
stands is saved, it exits 130, and --resume goes on from that step. (A shell starts
background jobs with SIGINT ignored, and SIGTERM used to end the run at once: both lost
every step since the last save.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from training.data.synth import SynthConfig, write_synth_dataset
from training.stop_signals import stop_signals_interrupt

pytestmark = pytest.mark.integration  # a real `gad train` process


def _train_argv(data: Path, run: Path, *more: str) -> list[str]:
    return [sys.executable, "-m", "gad", "train", str(data), "--out", str(run),
            "--kind", "gad", "--long", "4", "--short", "4", "--max-steps", "100000",
            "--lora-rank", "4", "--lora-alpha", "8", "--no-progress", *more]  # fmt: skip


def _logged_steps(run: Path) -> list[int]:
    log = run / "log.jsonl"
    if not log.is_file():
        return []
    return [json.loads(line)["step"] for line in log.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_background_run_saves_where_it_stands_on_a_stop_signal(
    tmp_path: Path, stop: signal.Signals
) -> None:
    data, run = tmp_path / "data", tmp_path / "run"
    write_synth_dataset(data, SynthConfig(videos_train=4, videos_test=1, feature_dim=16))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        _train_argv(data, run),
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        # As `cmd &` in a script starts it: SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        deadline = time.monotonic() + 120
        while not _logged_steps(run) and time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.2)
        assert _logged_steps(run), "no step logged in 120 s"
        process.send_signal(stop)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    state = torch.load(run / "checkpoint" / "trainer_state.pt", weights_only=False)
    assert state["step"] >= _logged_steps(run)[-1] > 0
    # --resume goes on from the saved step (a few more steps, then stopped again).
    resumed = subprocess.run(
        _train_argv(data, run, "--resume", "--max-steps", str(state["step"] + 3)),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    after = torch.load(run / "checkpoint" / "trainer_state.pt", weights_only=False)
    assert after["step"] == state["step"] + 3


def test_the_callers_handlers_are_kept_and_everything_is_restored_after() -> None:
    def callers(signum: int, frame: object) -> None:
        raise RuntimeError("the caller's")

    before = signal.signal(signal.SIGTERM, callers)
    saved_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with stop_signals_interrupt():
            assert signal.getsignal(signal.SIGTERM) is callers  # the caller's, untouched
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)  # ignored before: now stops the loop
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is callers
    finally:
        signal.signal(signal.SIGTERM, before)
        signal.signal(signal.SIGINT, saved_int)
