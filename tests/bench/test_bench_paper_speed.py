"""`gad bench paper-speed`: one row per task, free decoding that really decodes the
answer's tokens, and a shape that says when it is not the paper's."""

import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bench.paper_speed import (
    COIN,
    OAD,
    REDUCED,
    PaperSpeedBench,
    SpeedRow,
    _capped,
    default_bench,
    render_paper_speed,
)
from gad.cli import main
from model.backbone import resolve_backbone
from model.config import ModelConfig
from model.gad import GADClassifier

# The smallest shapes that still have both tasks' structure (a window, k > 1 tokens per
# frame joined by ","), on the byte-level tiny backbone (answers of 10-20 tokens).
MINIMAL = ["--backbone", "tiny", "--oad-long", "4", "--oad-short", "2"]
MINIMAL += ["--coin-frames", "3", "--coin-tokens", "2", "--repeats", "2", "--device", "cpu"]


def test_defaults_are_the_papers_shapes_on_cuda_and_reduced_on_a_cpu() -> None:
    cuda = default_bench("cuda")
    assert (cuda.backbone, cuda.dtype) == ("llama3.2-1b-random", "bfloat16")
    assert (cuda.oad_long, cuda.oad_short, cuda.coin_frames, cuda.coin_tokens) == (
        128,
        32,
        1200,
        10,
    )
    assert cuda.reductions(OAD) == [] and cuda.reductions(COIN) == []
    cpu = default_bench("cpu")
    assert cpu == replace(REDUCED, device="cpu", dtype="float32")
    assert cpu.reductions(COIN) == ["llama3.2-1b-random", "1,200 frames"]
    full = default_bench("cpu", full=True)
    assert (full.backbone, full.coin_frames, full.dtype) == ("llama3.2-1b-random", 1200, "float32")
    assert full.reductions(OAD) == [] and full.reductions(COIN) == []


def test_the_cap_counts_what_the_free_loop_produced() -> None:
    # The wrapper only caps the model's own free loop: an uncapped run of the same model
    # starts with the same tokens.
    config = ModelConfig(
        backbone="tiny",
        kind="generative",
        feature_dim=8,
        class_names=("Background", "BaseballPitch", "CliffDiving"),
        long_frames=4,
        short_frames=2,
    )
    torch.manual_seed(0)
    model = GADClassifier(config, resolve_backbone("tiny")).eval()
    features = torch.randn(1, 6, 8)
    full = model._decode(
        features, None, trie=model.trie, limit=8, constrained=False
    )  # what free decoding gives, uncapped
    counts: list[int] = []
    _capped(model, 3, counts)
    capped = model._decode(features, None, trie=model.trie, limit=8, constrained=False)
    assert counts == [len(capped[0])] == [min(3, len(full[0]))]
    assert capped[0] == full[0][:3]


@pytest.mark.integration  # ~1 s idle, several under load: four models built and timed
def test_paper_speed_rows_decode_the_tokens_they_claim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "paper-speed.md"
    assert main(["bench", "paper-speed", *MINIMAL, "--out", str(out)]) == 0
    text = out.read_text()
    assert text.strip() in capsys.readouterr().out
    rows = [line for line in text.splitlines() if line.startswith(("| OAD ", "| COIN "))]
    assert [r.split("|")[1].strip() for r in rows] == [OAD, COIN]
    cells = {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[2:-1]] for r in rows}
    oad, coin = cells[OAD], cells[COIN]
    assert oad[0].startswith("reduced: tiny, window 4 + 2 rows × 1 token = 6 frame tokens")
    assert "(paper: llama3.2-1b-random, window 128 + 32)" in oad[0]
    # 3 frames × (2 tokens + the "," separator) less the last separator.
    assert coin[0].startswith("reduced: tiny, 3 frames × 2 tokens + ',' = 8 frame tokens")
    assert oad[1].startswith("CPU") and oad[2] == "float32"

    # Every decode (warm-up and repeats) produced its answer's full token count: the
    # column prints the count only then ("a–b of N" otherwise), and the count is the
    # answer's own, " cliff diving" and " Crop and fold paper." in tiny's bytes.
    tokenizer = resolve_backbone("tiny").tokenizer
    answers = dict(re.findall(r'(OAD|COIN) "([^"]+)" \(\d+ tokens\)', text))
    assert answers == {OAD: "cliff diving", COIN: "Crop and fold paper."}
    for task, answer in answers.items():
        tokens = len(tokenizer.encode(" " + answer, add_special_tokens=False))
        assert cells[task][5] == str(tokens) and f'"{answer}" ({tokens} tokens)' in text
        head_ms, decode_ms, ratio = float(cells[task][3]), float(cells[task][4]), cells[task][6]
        assert head_ms > 0 and decode_ms > 0
        assert float(ratio.rstrip("×")) == pytest.approx(decode_ms / head_ms, rel=0.02)


def test_table_labels_reduced_rows_and_short_decodes() -> None:
    bench = PaperSpeedBench(repeats=3)
    rows = [
        SpeedRow(OAD, (), "llama3.2-1b-random, window", 160, " baseball pitch", 2, (2, 2), 5, 15),
        SpeedRow(COIN, ("1,200 frames",), "x", 8, " Step.", 5, (5, 3, 5), 10, 20),
    ]
    table = render_paper_speed(rows, bench)
    assert "| OAD | llama3.2-1b-random, window | CPU" in table
    assert "| 5.00 | 15.00 | 2 | 3.00× |" in table
    assert "| COIN | reduced: x (paper: 1,200 frames) | CPU" in table
    assert "| 10.00 | 20.00 | 3–5 of 5 | 2.00× |" in table
    assert "median of 3 after a warm-up" in table


def test_help_names_the_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "paper-speed", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "usage: gad bench paper-speed" in text and "--full" in text
