import json
from pathlib import Path

import pytest

from gad.cli import main
from training.data.synth import SynthConfig, write_synth_dataset


def test_compare_writes_one_row_per_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    write_synth_dataset(data, SynthConfig(videos_train=3, videos_test=1, feature_dim=16))
    table = tmp_path / "compare.md"
    argv = ["bench", "compare", "--data", str(data), "--runs", str(tmp_path / "runs"),
            "--out", str(table), "--long", "4", "--short", "4", "--max-steps", "2",
            "--lora-rank", "4", "--lora-alpha", "8", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    text = table.read_text()
    rows = [
        line for line in text.splitlines() if line.startswith("| ") and "classifier" not in line
    ]
    # The paper's generative baseline (free decoding) first, then the constrained decoder
    # as a row of its own: one trained generative model, two decodings.
    assert [row.split("|")[1].strip() for row in rows] == [
        "generative",
        "generative, constrained",
        "discriminative",
        "gad",
    ]
    assert "1.0×" in rows[0]  # generative (free) is the reference for the speed ratio
    assert "free greedy decoding" in text and "edit distance" in text
    for kind in ("generative", "discriminative", "gad"):
        assert (tmp_path / "runs" / kind / "eval" / "metrics.json").is_file()
    evals = tmp_path / "runs" / "generative"
    free = json.loads((evals / "eval" / "metrics.json").read_text())
    constrained = json.loads((evals / "eval-constrained" / "metrics.json").read_text())
    assert (free["decoding"], constrained["decoding"]) == ("free", "constrained")
    assert free["map"] == constrained["map"]  # same model, same likelihood scores
    cells = [[c.strip() for c in row.split("|")[2:-1]] for row in rows[:2]]
    assert cells[0][0] == cells[1][0] and cells[0][1] == cells[1][1]  # mAP, mcAP columns
    assert text.strip() in capsys.readouterr().out
