import json
import re
from pathlib import Path

import pytest

from gad.cli import main
from training.data.synth import SynthConfig, write_synth_dataset

pytestmark = pytest.mark.integration  # trains every kind for the comparison table


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


def test_clip_compare_has_both_generative_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from training.data.procedures import ProcedureConfig, write_procedure_dataset

    data = tmp_path / "data"
    write_procedure_dataset(data, ProcedureConfig(videos_train=6, videos_test=2))
    table = tmp_path / "compare.md"
    argv = ["bench", "compare", "--task", "clip", "--data", str(data), "--runs",
            str(tmp_path / "runs"), "--out", str(table), "--clip-frames", "8", "--max-steps",
            "2", "--batch-size", "4", "--lora-rank", "4", "--lora-alpha", "8",
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    text = table.read_text()
    rows = [
        line for line in text.splitlines() if line.startswith("| ") and "classifier" not in line
    ]
    assert [row.split("|")[1].strip() for row in rows] == [
        "generative",
        "generative, constrained",
        "discriminative",
        "gad",
    ]
    assert "free greedy decoding" in text and "edit distance" in text and "batched" in text
    evals = tmp_path / "runs" / "generative"
    free = json.loads((evals / "eval" / "metrics.json").read_text())
    constrained = json.loads((evals / "eval-constrained" / "metrics.json").read_text())
    assert (free["decoding"], constrained["decoding"]) == ("free", "constrained")
    # Same model, same likelihood scores: top-5 agrees; only the decoded top-1 may differ.
    assert free["step"]["top5"] == constrained["step"]["top5"] is not None
    cells = [[c.strip() for c in row.split("|")[2:-1]] for row in rows[:2]]
    assert cells[0][1] == cells[1][1] and cells[0][4] == cells[1][4]  # step, next top-5
    assert cells[0][1] != "—" and cells[0][4] != "—"  # generative top-5 is defined now
    assert text.strip() in capsys.readouterr().out


def test_clip_compare_speed_ratio_divides_per_answer_times() -> None:
    from model.config import LoraSettings
    from training.compare import ClipCompareRow, render_clip_compare
    from training.train import TrainConfig

    metrics = {q: {"top1": 0.5, "top5": None, "clips": 2} for q in ("step", "task", "next")}
    rows = [  # per answer 40 vs 8 ms (5×); batched 120 vs 10 ms (12×): not like with like
        ClipCompareRow("generative", metrics, 1.0, 2, {"answer": 40.0, "clip": 120.0}),
        ClipCompareRow("gad", metrics, 1.0, 2, {"answer": 8.0, "clip": 10.0}),
    ]
    base = TrainConfig(data=Path("d"), out=Path("o"), task="clip", lora=LoraSettings(4, 8, 0.0))
    lines = render_clip_compare(rows, base, {}).splitlines()
    header = [c.strip() for c in lines[lines.index(next(x for x in lines if "classifier" in x))]
              .split("|")[1:-1]]  # fmt: skip
    gad = dict(zip(header, [c.strip() for c in lines[-1].split("|")[1:-1]], strict=True))
    assert gad["ms / answer"] == "8.0" and gad["speed vs generative"] == "5.0×"
    assert gad["ms / clip, batched"] == "10.0" and gad["batched speed vs generative"] == "12.0×"
    assert header.index("speed vs generative") < header.index("batched speed vs generative")


def test_resume_continues_a_stopped_comparison_where_it_stood(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`gad bench compare --resume`: a kind whose training stopped half-way continues from
    its checkpoint, a finished one is kept as it is; without --resume all start over."""
    data = tmp_path / "data"
    write_synth_dataset(data, SynthConfig(videos_train=3, videos_test=1, feature_dim=16))
    runs = tmp_path / "runs"
    common = ["--data", str(data), "--runs", str(runs), "--long", "4", "--short", "4",
              "--lora-rank", "4", "--lora-alpha", "8", "--no-progress"]  # fmt: skip
    # "gad" stopped after 2 of 4 steps (its own run folder, as the comparison writes it)
    assert main(["train", str(data), "--out", str(runs / "gad"), "--kind", "gad",
                 *common[4:], "--max-steps", "2", "--save-every", "1"]) == 0  # fmt: skip
    log = runs / "gad" / "log.jsonl"
    with log.open("a") as handle:  # a mark that a restart from scratch would remove
        handle.write('{"mark": "stopped here"}\n')
    compare = ["bench", "compare", *common, "--kinds", "discriminative,gad", "--max-steps", "4"]
    assert main([*compare, "--resume"]) == 0

    def steps(kind: str) -> list[int]:
        lines = (runs / kind / "log.jsonl").read_text().splitlines()
        return [json.loads(line)["step"] for line in lines if '"step"' in line]

    assert "stopped here" in log.read_text() and max(steps("gad")) == 4  # continued
    assert max(steps("discriminative")) == 4  # nothing there: trained from scratch
    finished = (runs / "gad" / "checkpoint" / "trainer_state.pt").stat().st_mtime_ns
    assert main([*compare, "--resume"]) == 0  # both finished: kept as they are
    assert (runs / "gad" / "checkpoint" / "trainer_state.pt").stat().st_mtime_ns == finished
    assert main(compare) == 0  # without --resume: from scratch
    assert "stopped here" not in log.read_text() and max(steps("gad")) == 4
    capsys.readouterr()


def test_a_validated_comparison_writes_each_kinds_learning_curve_under_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from training.curves import parse_curves
    from training.validation import read_validation

    data = tmp_path / "data"
    write_synth_dataset(data, SynthConfig(videos_train=3, videos_test=1, feature_dim=16))
    table, runs = tmp_path / "compare.md", tmp_path / "runs"
    argv = ["bench", "compare", "--data", str(data), "--runs", str(runs), "--out", str(table),
            "--kinds", "discriminative,gad", "--long", "4", "--short", "4", "--max-steps", "4",
            "--val-data", str(data), "--val-every", "2", "--val-windows", "8", "--patience",
            "5", "--lora-rank", "4", "--lora-alpha", "8", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    text = table.read_text()
    curves = parse_curves(text)
    # The checkpoint each row evaluated (its "best val loss @ step") is the one marked.
    evaluated = dict(re.findall(r"^\| (\w+) \|.* @ (\d+), budget \|", text, re.MULTILINE))
    assert {k: [p.step for p in c if p.kept] for k, c in curves.items()} == {
        k: [int(step)] for k, step in evaluated.items()
    }
    assert list(curves) == ["discriminative", "gad"]
    for kind, curve in curves.items():
        logged = read_validation(runs / kind)
        assert [p.step for p in curve] == [r["step"] for r in logged] == [2, 4]
        # The table's cells are the run's validation losses (4 decimals).
        assert [p.watched for p in curve] == [round(r["val_loss"], 4) for r in logged]
        # Training logs every 10 steps and at the last: nothing before step 2, step 4 after.
        assert curve[0].train_loss is None and curve[1].train_loss is not None
    assert curves["gad"][0].val_lm is not None and curves["discriminative"][0].val_lm is None
    capsys.readouterr()
