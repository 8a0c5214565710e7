"""scripts/summarise_seeds.py: the per-seed tables of the long SmolLM2 runs, summarised."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts/summarise_seeds.py"
CLIP_HEAD = (
    "| classifier | step top-1 % | step top-5 % | task top-1 % | next top-1 % | next top-5 % "
    "| train s | best val loss @ step | ms / answer |\n"
    "|---|---:|---:|---:|---:|---:|---:|---|---:|\n"
)


CLIP_GENERATIVE = (
    CLIP_HEAD
    + "| generative | 10.0 | — | 30.0 | 5.0 | — | 200 | 1.0 @ 50, flat | 40.0 |\n"
    + "| generative, constrained | 20.0 | — | 40.0 | 6.0 | — | 200 | 1.0 @ 50, flat | 41.0 |\n"
)


def summarise(kind: str, folder: Path, *flags: str) -> str:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), kind, str(folder), *flags], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_clip_rows_are_averaged_over_the_seeds_each_seed_shown(tmp_path: Path) -> None:
    (tmp_path / "s0-gad.md").write_text(
        "# a run\n\nsome text | with a bar\n\n" + CLIP_HEAD
        + "| gad | 50.0 | 90.0 | 80.0 | 40.0 | 70.0 | 100 | 0.5 @ 300, flat | 12.0 |\n"
    )  # fmt: skip
    (tmp_path / "s1-gad.md").write_text(
        CLIP_HEAD
        + "| gad | 60.0 | 100.0 | 90.0 | 50.0 | 80.0 | 120 | 0.4 @ 1500, budget | 13.0 |\n"
    )
    (tmp_path / "s0-generative.md").write_text(CLIP_GENERATIVE)
    (tmp_path / "notes.md").write_text("not a run's table\n")
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
        for line in summarise("clip", tmp_path).splitlines()
        if line.startswith("| ") and not line.startswith("| classifier")
    }
    # mean ± sample std: (50, 60) → 55.0 ± 7.1; (90, 100) → 95.0 ± 7.1.
    assert rows["gad"][1:4] == ["0, 1", "55.0 ± 7.1", "95.0 ± 7.1"]
    assert rows["gad"][-2:] == [
        "50.0 (s0), 60.0 (s1)",
        "0.5 @ 300, flat (s0); 0.4 @ 1500, budget (s1)",
    ]
    # The constrained row is a row of its own; undefined top-5 stays undefined.
    assert rows["generative (free decoding, the paper's)"][2:4] == ["10.0", "—"]
    assert rows["generative, constrained"][2] == "20.0"
    assert list(rows) == [
        "generative (free decoding, the paper's)", "generative, constrained", "gad"
    ]  # fmt: skip


def test_clip_summary_names_its_tables_data_and_the_plot_it_drew(tmp_path: Path) -> None:
    runs = tmp_path / "clip-smollm2-noise1.5-runs"
    runs.mkdir()
    for seed in (0, 1):
        (runs / f"s{seed}-gad.md").write_text(
            "Backbone `smollm2-135m`, data `data/procedures-noise1.5-val`, clips of at most 32\n\n"
            + CLIP_HEAD
            + "| gad | 50.0 | 90.0 | 80.0 | 40.0 | 70.0 | 100 | 0.5 @ 300, flat | 12.0 |\n"
        )
    text = summarise("clip", runs)
    assert "`clip-smollm2-noise1.5-runs/`" in text
    assert text.count("`data/procedures-noise1.5-val`") == 1  # each data folder once
    assert "Learning curves: under each run's table." in text  # no --plot: nothing drawn
    plot = tmp_path / "never-drawn.png"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "clip", str(runs), "--plot", str(plot)],
        capture_output=True, text=True,
    )  # fmt: skip
    # No table has curves: nothing is drawn, and the summary links no plot.
    assert done.returncode == 0 and "no plot" in done.stderr and not plot.exists()
    assert "Learning curves: under each run's table." in done.stdout
    from training.curves import CurvePoint, curves_markdown

    curve = (CurvePoint(50, 1.0, 0.9, None, 0.8, 0.7, None),)
    with (runs / "s0-gad.md").open("a") as table:
        table.write("\n".join(curves_markdown({"gad": curve})) + "\n")
    plot = tmp_path / "img" / "curves.png"
    plot.parent.mkdir()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "clip", str(runs), "--plot", str(plot)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0 and plot.exists(), done.stderr
    assert f"drawn in `{plot}`" in done.stdout  # outside docs/: named as given


def test_ordering_groups_by_dataset_and_says_how_each_run_stopped(tmp_path: Path) -> None:
    head = (
        "| classifier | mAP % | mcAP % | frame acc % | F1@0.5 % | best val loss @ step |\n"
        "|---|---:|---:|---:|---:|---|\n"
    )
    for seed, value in ((0, "90.0"), (2, "94.0")):
        (tmp_path / f"synth-s{seed}-gad-lm0.5.md").write_text(
            head + f"| gad | {value} | 99.0 | 95.0 | 70.0 | 0.05 @ {seed}00, flat |\n"
        )
    (tmp_path / "mocap-s0-discriminative.md").write_text(
        head + "| discriminative | 60.0 | 80.0 | 70.0 | 30.0 | 0.9 @ 1500, budget |\n"
    )
    text = summarise("ordering", tmp_path)
    assert text.index("## mocap") < text.index("## synth")
    assert "| gad, λ = 0.5 | 0, 2 | 92.0 ± 2.8 | 99.0 ± 0.0 |" in text
    assert "| 90.0 (s0), 94.0 (s2) | 0.05 @ 000, flat (s0); 0.05 @ 200, flat (s2) |" in text
    assert (
        "| discriminative | 0 | 60.0 | 80.0 | 70.0 | 30.0 | 60.0 (s0) | 0.9 @ 1500, budget (s0) |"
        in text
    )


def test_an_unknown_kind_is_refused_with_the_usage() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "nope"], capture_output=True, text=True)
    assert done.returncode == 2 and "ordering|clip" in done.stderr


def test_curves_under_a_table_are_plotted_and_left_out_of_the_summary(tmp_path: Path) -> None:
    from training.curves import CurvePoint, curves_markdown

    head = "| classifier | mAP % | mcAP % | frame acc % | F1@0.5 % | best val loss @ step |\n"
    head += "|---|---:|---:|---:|---:|---|\n"
    curve = (CurvePoint(25, 1.0, 0.9, None, 0.8, 0.7, None),
             CurvePoint(50, 0.5, 0.4, None, 0.6, 0.5, None))  # fmt: skip
    for seed in (0, 1):
        (tmp_path / f"synth-s{seed}-gad.md").write_text(
            head
            + "| gad | 90.0 | 99.0 | 95.0 | 70.0 | 0.5 @ 50, budget |\n"
            + "\n".join(curves_markdown({"gad": curve}))
            + "\n"
        )
    png = tmp_path / "curves.png"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "ordering", str(tmp_path), "--plot", str(png)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # The curve's rows ("| 25 | ...") are not classifiers of the summary.
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert [r.split("|")[1].strip() for r in rows] == ["classifier", "gad, λ = 1 (paper)"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    (tmp_path / "synth-s0-gad.md").write_text(head + "| gad | 90.0 | 99.0 | 95.0 | 70.0 | — |\n")
    (tmp_path / "synth-s1-gad.md").unlink()
    png.unlink()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "ordering", str(tmp_path), "--plot", str(png)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0 and "no plot" in done.stderr and not png.exists()


def compact_sections(text: str) -> dict[str, str]:
    """The `--compact` tables by their "## dataset" heading: each from its header line."""
    out: dict[str, str] = {}
    for section in text.split("## ")[1:]:
        name, _, body = section.partition("\n")
        out[name] = body[body.index("| classifier") :]
    return out


def compact_tables(text: str) -> dict[str, list[list[str]]]:
    """The `--compact` tables by their "## dataset" heading: each row's cells."""
    return {name: table_rows(table) for name, table in compact_sections(text).items()}


def test_compact_shows_each_seed_and_leaves_missing_ones_open(tmp_path: Path) -> None:
    head = "| classifier | mAP % | mcAP % | frame acc % | F1@0.5 % | best val loss @ step |\n"
    head += "|---|---:|---:|---:|---:|---|\n"
    for seed, value, f1 in ((0, "90.0", "60.0"), (2, "94.0", "70.0")):
        (tmp_path / f"synth-s{seed}-gad.md").write_text(
            head + f"| gad | {value} | 99.0 | 95.0 | {f1} | 0.05 @ 100, flat |\n"
        )
    (tmp_path / "synth-s1-generative.md").write_text(
        head
        + "| generative | 80.0 | 90.0 | 85.0 | — | 0.5 @ 100, flat |\n"
        + "| generative, constrained | 81.0 | 90.0 | 85.0 | 50.0 | 0.5 @ 100, flat |\n"
    )
    text = summarise("ordering", tmp_path, "--compact")
    assert "| classifier | mAP, mean ± std | seed 0 | seed 1 | seed 2 | F1@0.5" in text
    # A seed a row has not run is "—", as is a mean over an undefined cell; the constrained
    # decoding is the full summary's row, not the compact table's.
    assert compact_tables(text) == {
        "synth": [
            ["GAD, λ = 1 (the paper's)", "92.0 ± 2.8", "90.0", "—", "94.0", "65.0 ± 7.1"],
            ["generative", "80.0", "—", "80.0", "—", "—"],
        ]
    }
    refused = subprocess.run(
        [sys.executable, str(SCRIPT), "ordering", "--compact", "--plot", str(tmp_path / "p.png")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode == 2 and "--compact" in refused.stderr


def test_clip_compact_shows_step_top1_per_seed_and_the_constrained_row(tmp_path: Path) -> None:
    runs = tmp_path / "clip-runs"
    runs.mkdir()
    for seed, step, nxt in ((0, "50.0", "40.0"), (1, "60.0", "50.0")):
        (runs / f"s{seed}-gad.md").write_text(
            CLIP_HEAD
            + f"| gad | {step} | 90.0 | 80.0 | {nxt} | 70.0 | 100 | 0.5 @ 300, flat | 12.0 |\n"
        )
    (runs / "s1-generative.md").write_text(CLIP_GENERATIVE)
    text = summarise("clip", runs, "--compact")
    assert (
        "| classifier | step top-1, mean ± std | seed 0 | seed 1 "
        "| task top-1, mean ± std | next top-1, mean ± std |"
    ) in text
    # Headed by the folder (clip tables have no dataset); constrained decoding is a row here.
    assert compact_tables(text) == {
        "clip-runs": [
            ["GAD", "55.0 ± 7.1", "50.0", "60.0", "80.0 ± 0.0", "45.0 ± 7.1"],
            ["generative (free decoding, the paper's)", "10.0", "—", "10.0", "30.0", "5.0"],
            ["generative, constrained", "20.0", "—", "20.0", "40.0", "6.0"],
        ]
    }


PAPER = SCRIPT.parents[1] / "docs/paper.md"
# paper.md's seed tables: (kind, folder of run tables, group) → the text they follow.
PAPER_TABLES = {
    ("ordering", "ordering-smollm2", "synth"): "**Synthetic benchmark**",
    ("ordering", "ordering-smollm2", "mocap"): "**Motion capture**",
    ("clip", "clip-smollm2-noise1.5-runs", "clip-smollm2-noise1.5-runs"): "**Noise 1.5**",
}


def test_paper_md_seed_tables_are_the_summaries_of_the_committed_runs() -> None:
    """docs/paper.md's per-seed tables (synth, mocap; clip at noise 1.5) hold what
    `--compact` derives from the committed run tables (its labels may say more; bold is
    markup)."""
    paper = PAPER.read_text()
    printed: dict[tuple[str, str], str] = {}  # one run of the script per folder
    for (kind, folder, group), heading in PAPER_TABLES.items():
        if (kind, folder) not in printed:
            runs = SCRIPT.parents[1] / "docs/benchmarks" / folder
            printed[kind, folder] = summarise(kind, runs, "--compact")
        derived_table = compact_sections(printed[kind, folder])[group]
        derived = table_rows(derived_table)
        header = derived_table.partition("\n")[0]
        after = paper[paper.index(heading) :]
        table = after[after.index(header) :]  # the same columns, seeds included
        rows = table_rows(table)
        assert len(rows) == len(derived), group
        for paper_row, row in zip(rows, derived, strict=True):
            assert paper_row[0].startswith(row[0]), (group, paper_row[0], row[0])
            assert paper_row[1:] == row[1:], (group, row[0])


def table_rows(table: str) -> list[list[str]]:
    """The body rows of the Markdown table `table` starts with, bold markers stripped."""
    rows = []
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip().strip("*") for c in line.strip("|").split("|")])
    return rows
