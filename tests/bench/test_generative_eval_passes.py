"""scripts/generative_eval_passes.py: the generative evaluation timed both ways (four
passes over each window, as the compare's two rows ran; one prefill shared), agreeing."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts/generative_eval_passes.py"


def test_both_ways_give_the_same_scores_and_labels_and_a_timed_row_each() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--batch", "4", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert [r.split("|")[2].strip() for r in rows[1:]] == ["4", "1"]  # passes per window
    assert all(float(r.split("|")[3]) > 0 for r in rows[1:])
    assert "same scores and labels both ways: yes" in done.stdout
