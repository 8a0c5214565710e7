"""Summarise the per-seed tables of the long SmolLM2 runs (issue 29): per classifier, the
mean ± sample std of each metric over the seeds done, and each seed's value.

    .venv/bin/python scripts/summarise_seeds.py ordering > docs/benchmarks/ordering-smollm2.md
    .venv/bin/python scripts/summarise_seeds.py clip > docs/benchmarks/clip-smollm2.md
    ... ordering --plot docs/img/ordering-curves.png   (also the learning curves, as PNG)
    .venv/bin/python scripts/summarise_seeds.py ordering|clip [FOLDER] --compact   (paper.md's)

`ordering`: scripts/ordering_smollm2.sh's tables (ordering-smollm2/DATASET-sSEED-ROW.md), with
how each run stopped; `clip`: scripts/clip_smollm2_compare.sh's (clip-smollm2-runs/
sSEED-KIND.md). A second argument names another folder of tables (the noisier procedures:
`clip docs/benchmarks/clip-smollm2-noise1.5-runs`); the summary names the data its tables
were trained on and links the plot drawn with it. `--compact` prints the short tables
docs/paper.md shows, per dataset (ordering: mAP mean ± std, one column per seed, F1@0.5
mean ± std) or for the folder (clip: step top-1 likewise, then task and next-step top-1
mean ± std); a test holds paper.md's numbers to them.
"""

from __future__ import annotations

import re
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterator
from itertools import dropwhile, takewhile
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "docs/benchmarks"
CONSTRAINED = "generative, constrained"
DATA = re.compile(r"data `([^`]+)`")  # a table's first line: "..., data `data/x`, ..."
# {group: {row: {seed: {column: cell}}}}: a group is a dataset (ordering) or "" (clip).
Found = dict[str, dict[str, dict[int, dict[str, str]]]]


def read_rows(path: Path) -> dict[str, dict[str, str]]:
    """The table's rows by classifier name: {column: cell} (its first table: the learning
    curves come after it)."""
    lines = list(
        takewhile(
            lambda line: line.startswith("|"),
            dropwhile(lambda line: not line.startswith("|"), path.read_text().splitlines()),
        )
    )
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(head, cells, strict=True))
    return rows


def tables(folder: Path, name: re.Pattern[str]) -> Iterator[tuple[Path, re.Match[str]]]:
    """The run tables in `folder` (file names matching `name`), in name order."""
    for path in sorted(folder.glob("*.md")):
        match = name.match(path.name)
        if match:
            yield path, match


def collect(folder: Path, name: re.Pattern[str]) -> Found:
    """Every table in `folder` whose file name matches `name` (groups: seed, row and,
    where there is one, dataset); a table's constrained-decoding row is a row of its own."""
    found: Found = defaultdict(lambda: defaultdict(dict))
    for path, match in tables(folder, name):
        group, seed = match.groupdict().get("dataset") or "", int(match["seed"])
        for classifier, cells in read_rows(path).items():
            row = match["row"] if classifier != CONSTRAINED else classifier
            found[group][row][seed] = cells
    return found


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def number(cell: str) -> float | None:
    try:
        return float(cell.replace(",", ""))
    except ValueError:  # "—": undefined for this row
        return None


def mean_cell(seeds: dict[int, dict[str, str]], metric: str) -> str:
    """`metric`'s mean ± sample std over the seeds done ("—" if any seed's is undefined)."""
    values = [number(cells[metric]) for cells in seeds.values()]
    present = [v for v in values if v is not None]
    return spread(present) if len(present) == len(values) else "—"


def summary_rows(
    rows: dict[str, dict[int, dict[str, str]]],
    order: tuple[str, ...],
    labels: dict[str, str],
    metrics: tuple[str, ...],
    per_seed: str,
    extra: str | None = None,
) -> list[str]:
    """One Markdown row per classifier: seeds, mean ± std per metric, `per_seed` by seed,
    then `extra` by seed (as printed)."""
    out = []
    for row in order:
        seeds = rows.get(row)
        if not seeds:
            continue
        done = sorted(seeds)
        cells = [mean_cell(seeds, metric) for metric in metrics]
        tail = [", ".join(f"{seeds[s][per_seed]} (s{s})" for s in done)]
        if extra is not None:
            # "0.34 @ 850, budget" holds a comma: seeds apart by "; ", each tagged
            tail.append("; ".join(f"{seeds[s].get(extra, '—')} (s{s})" for s in done))
        out.append(
            f"| {labels.get(row, row)} | {', '.join(map(str, done))} | "
            + " | ".join(cells + tail)
            + " |"
        )
    return out


ORDERING_NAME = re.compile(r"(?P<dataset>\w+)-s(?P<seed>\d+)-(?P<row>[\w.-]+)\.md$")
ORDERING_ROWS = ("discriminative", "gad", "gad-lm0.5", "generative", CONSTRAINED)
ORDERING_LABELS = {"gad": "gad, λ = 1 (paper)", "gad-lm0.5": "gad, λ = 0.5"}
ORDERING_METRICS = ("mAP %", "mcAP %", "frame acc %", "F1@0.5 %")


def data_of(folder: Path, name: re.Pattern[str]) -> list[str]:
    """The data folders the tables in `folder` were trained on (their first line's
    "data `...`"), each once, in name order."""
    found = (DATA.search(path.read_text()) for path, _ in tables(folder, name))
    return list(dict.fromkeys(match[1] for match in found if match))


def curves_link(plot: Path | None) -> str:
    """Where the learning curves are: under each run's table, and drawn in `plot`."""
    if plot is None:
        return "under each run's table"
    try:
        shown = plot.resolve().relative_to(BENCHMARKS.parent)
    except ValueError:  # outside docs/: named as given
        return f"under each run's table, drawn in `{plot}`"
    return f"under each run's table, drawn in [../{shown}](../{shown})"


def render_ordering(found: Found, folder: Path, plot: Path | None) -> str:
    out = [
        "# SmolLM2-135M: generative vs discriminative vs GAD, trained until flat (issue 29)",
        "",
        "Made by `scripts/ordering_smollm2.sh` (each run's own table in `ordering-smollm2/`)",
        "and `scripts/summarise_seeds.py ordering`. Mean ± sample std over the seeds done;",
        "*stopped*: each seed's best validation step and whether the loss went flat (else the",
        "step cap). CPU runs on the project's 2-core machine, one at a time. The protocol:",
        "batch 8, lr 5e-4 (cosine over the cap, 5 % warm-up), LoRA r=32 α=64; a validation every",
        "25 steps on 256 held-out windows, the served head's CE watched (the LM loss for",
        "generative), stopped after 8 validations without a 0.5 % gain, the best-validated",
        "checkpoint evaluated; synth: window 8 + 8, float32, a 1,500-step cap, 4 test videos;",
        "mocap: window 16 + 8, bf16 autocast, a 1,000-step cap, 6 test videos. Learning",
        f"curves: {curves_link(plot)} (the six seed-0 rows finished before 2026-12-07",
        "predate them).",
    ]
    if not found:
        out += ["", "No run has finished yet: `scripts/ordering_smollm2.sh` makes them in turn."]
    for dataset in sorted(found):
        out += [
            "",
            f"## {dataset}",
            "",
            "| classifier | seeds | "
            + " | ".join(ORDERING_METRICS)
            + " | mAP per seed | stopped |",
            "|---|---|" + "---:|" * len(ORDERING_METRICS) + "---|---|",
        ]
        out += summary_rows(
            found[dataset],
            ORDERING_ROWS,
            ORDERING_LABELS,
            ORDERING_METRICS,
            "mAP %",
            "best val loss @ step",
        )
    return "\n".join(out) + "\n"


# `--compact`: per kind, the rows shown, their labels, the metric shown per seed and the
# metrics after it (mean ± std only); the heading names the dataset (ordering) or folder.
Compact = tuple[tuple[str, ...], dict[str, str], str, tuple[str, ...]]
ORDERING_COMPACT: Compact = (
    ("gad", "gad-lm0.5", "discriminative", "generative"),
    {"gad": "GAD, λ = 1 (the paper's)", "gad-lm0.5": "GAD, λ = 0.5"},
    "mAP %",
    ("F1@0.5 %",),
)


def render_compact(found: Found, folder: Path, spec: Compact) -> str:
    """Per group, paper.md's table: the main metric's mean ± std over the seeds done, each
    seed's value ("—": not run yet), then the other metrics' mean ± std."""
    order, labels, metric, after = spec
    short = [m.removesuffix(" %") for m in (metric, *after)]
    out: list[str] = []
    for group in sorted(found):
        rows = found[group]
        seeds = sorted({seed for row in order for seed in rows.get(row, {})})
        out += [
            f"## {group or folder.name}",
            "",
            f"| classifier | {short[0]}, mean ± std | "
            + " | ".join([f"seed {s}" for s in seeds] + [f"{m}, mean ± std" for m in short[1:]])
            + " |",
            "|---|---:|" + "---:|" * (len(seeds) + len(after)),
        ]
        for row in order:
            done = rows.get(row)
            if not done:
                continue
            per_seed = [done[s][metric] if s in done else "—" for s in seeds]
            tail = [mean_cell(done, m) for m in after]
            out.append(
                f"| {labels.get(row, row)} | {mean_cell(done, metric)} | "
                + " | ".join(per_seed + tail)
                + " |"
            )
        out.append("")
    return "\n".join(out) if out else "No run has finished yet.\n"


CLIP_NAME = re.compile(r"s(?P<seed>\d+)-(?P<row>[\w.-]+)\.md$")
CLIP_ROWS = ("generative", CONSTRAINED, "discriminative", "gad")
CLIP_LABELS = {"generative": "generative (free decoding, the paper's)"}
CLIP_METRICS = ("step top-1 %", "step top-5 %", "task top-1 %", "next top-1 %", "next top-5 %")
CLIP_COMPACT: Compact = (
    ("gad", "discriminative", "generative", CONSTRAINED),
    {**CLIP_LABELS, "gad": "GAD"},
    "step top-1 %",
    ("task top-1 %", "next top-1 %"),
)


def render_clip(found: Found, folder: Path, plot: Path | None) -> str:
    on = ", ".join(f"`{d}`" for d in data_of(folder, CLIP_NAME)) or "the procedures"
    out = [
        "# Clip tasks (COIN-style), SmolLM2-135M: generative vs discriminative vs GAD",
        "",
        "Made by `scripts/clip_smollm2_compare.sh` (each seed and classifier's own table in",
        f"`{folder.name}/`) and `scripts/summarise_seeds.py clip`: the current",
        "defaults (the authors' targets; the generative baseline decodes free, the",
        "trie-constrained decoding is its own row of the same model) on " + on + " (`gad",
        "data synth --procedures --val-videos 24`, with the folder's `--noise` where it names",
        "one; the default is 0.35), batch 8, lr 5e-4 (cosine over a 1,500-step cap, 5 %",
        "warm-up), LoRA r=32 α=64, clips of at most 32 rows, on the project's 2-core CPU; a",
        "validation every 50 steps on 256 held-out clips, the served heads' CE watched (the LM",
        "loss for generative), stopped after 6 validations without a 0.5 % gain, the",
        "best-validated checkpoint evaluated. Mean ± sample std over the seeds done; per seed:",
        "step top-1 %; *stopped*: each seed's best validation loss @ step, flat or budget.",
        "Test split: 156 step, 36 task and 120 next-step clips (chance 5.9 % / 16.7 % / 5.9 %;",
        "the next step's Bayes limit is 90 %). Latency is not summarised here: the runs' own",
        "columns were timed while other work could share the CPU; per answer on the idle box",
        f"see `clip-cpu.md`. Learning curves: {curves_link(plot)}.",
    ]
    rows = found.get("")
    if not rows:
        out += ["", "No run has finished yet: `scripts/clip_smollm2_compare.sh` makes them."]
        return "\n".join(out) + "\n"
    out += [
        "",
        "| classifier | seeds | " + " | ".join(CLIP_METRICS) + " | step top-1 per seed | stopped |",
        "|---|---|" + "---:|" * len(CLIP_METRICS) + "---|---|",
    ]
    out += summary_rows(
        rows, CLIP_ROWS, CLIP_LABELS, CLIP_METRICS, "step top-1 %", "best val loss @ step"
    )
    return "\n".join(out) + "\n"


KINDS = {
    "ordering": (
        BENCHMARKS / "ordering-smollm2",
        ORDERING_NAME,
        render_ordering,
        ORDERING_LABELS,
        ORDERING_COMPACT,
    ),
    "clip": (BENCHMARKS / "clip-smollm2-runs", CLIP_NAME, render_clip, CLIP_LABELS, CLIP_COMPACT),
}


def collect_curves(
    folder: Path, name: re.Pattern[str], labels: dict[str, str]
) -> dict[str, dict[str, dict]]:
    """The learning curves under the tables: {panel: {"seed S": curve}}, a panel per
    (dataset,) classifier; tables from before the curves were written have none."""
    from training.curves import parse_curves

    panels: dict[str, dict[str, dict]] = defaultdict(dict)
    for path, match in tables(folder, name):
        group = match.groupdict().get("dataset")
        for curve in parse_curves(path.read_text()).values():
            row = labels.get(match["row"], match["row"])
            panel = f"{group}: {row}" if group else row
            panels[panel][f"seed {match['seed']}"] = curve
    return dict(sorted(panels.items()))


def main(argv: list[str]) -> int:
    plot = None
    if "--plot" in argv:
        at = argv.index("--plot")
        plot, argv = Path(argv[at + 1]), argv[:at] + argv[at + 2 :]
    compact = "--compact" in argv
    argv = [arg for arg in argv if arg != "--compact"]
    if not argv or argv[0] not in KINDS or (compact and plot is not None):
        sys.stderr.write(
            f"usage: summarise_seeds.py {{{'|'.join(KINDS)}}} [FOLDER] [--plot PNG | --compact]\n"
        )
        return 2
    folder, name, render, labels, spec = KINDS[argv[0]]
    folder = Path(argv[1]) if len(argv) > 1 else folder
    if compact:
        sys.stdout.write(render_compact(collect(folder, name), folder, spec))
        return 0
    panels = collect_curves(folder, name, labels) if plot is not None else {}
    if plot is not None and not panels:
        sys.stderr.write(f"{folder}: no table has a learning curve yet; no plot\n")
        plot = None
    sys.stdout.write(render(collect(folder, name), folder, plot))
    if plot is not None:
        from training.reports import plot_learning_curves

        plot_learning_curves(plot, panels, title=f"SmolLM2-135M {argv[0]}: learning curves")
        sys.stderr.write(f"wrote {plot}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
