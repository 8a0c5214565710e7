"""Summarise scripts/ordering_smollm2.sh's tables: per dataset and classifier, the mean ±
sample std of each metric over the seeds done, each seed's mAP, and how each run stopped.

    .venv/bin/python scripts/ordering_summary.py > docs/benchmarks/ordering-smollm2.md
"""

from __future__ import annotations

import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

TABLES = Path(__file__).resolve().parents[1] / "docs/benchmarks/ordering-smollm2"
NAME = re.compile(r"(?P<dataset>\w+)-s(?P<seed>\d+)-(?P<row>[\w.-]+)\.md$")
ROWS = ("discriminative", "gad", "gad-lm0.5", "generative", "generative, constrained")
LABELS = {"gad": "gad, λ = 1 (paper)", "gad-lm0.5": "gad, λ = 0.5"}
METRICS = ("mAP %", "mcAP %", "frame acc %", "F1@0.5 %")


def read_rows(path: Path) -> dict[str, dict[str, str]]:
    """The table's rows by classifier name: {column: cell}."""
    lines = [line for line in path.read_text().splitlines() if line.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(head, cells, strict=True))
    return rows


def collect(folder: Path) -> dict[str, dict[str, dict[int, dict[str, str]]]]:
    """{dataset: {row: {seed: cells}}}."""
    found: dict[str, dict[str, dict[int, dict[str, str]]]] = defaultdict(lambda: defaultdict(dict))
    for path in sorted(folder.glob("*.md")):
        match = NAME.match(path.name)
        if not match:
            continue
        dataset, seed, row = match["dataset"], int(match["seed"]), match["row"]
        for name, cells in read_rows(path).items():
            key = row if name != "generative, constrained" else name
            found[dataset][key][seed] = cells
    return found


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def render(found: dict[str, dict[str, dict[int, dict[str, str]]]]) -> str:
    out = [
        "# SmolLM2-135M: generative vs discriminative vs GAD, trained until flat (issue 29)",
        "",
        "Made by `scripts/ordering_smollm2.sh` (each run's own table in `ordering-smollm2/`)",
        "and `scripts/ordering_summary.py`. Mean ± sample std over the seeds done; *stopped*:",
        "each seed's best validation step and whether the loss went flat (else the 1,500-step",
        "cap). CPU runs on the project's 2-core machine, one at a time. The protocol: batch 8,",
        "lr 5e-4 (cosine over the cap, 5 % warm-up), LoRA r=32 α=64; a validation every 25 steps",
        "on 256 held-out windows, the served head's CE watched (the LM loss for generative),",
        "stopped after 8 validations without a 0.5 % gain, the best-validated checkpoint",
        "evaluated; synth: window 8 + 8, 4 test videos; mocap: window 32 + 8, 6 test videos.",
    ]
    if not found:
        out += ["", "No run has finished yet: `scripts/ordering_smollm2.sh` makes them in turn."]
    for dataset in sorted(found):
        rows = found[dataset]
        out += [
            "",
            f"## {dataset}",
            "",
            "| classifier | seeds | " + " | ".join(METRICS) + " | mAP per seed | stopped |",
            "|---|---|" + "---:|" * len(METRICS) + "---|---|",
        ]
        for row in ROWS:
            seeds = rows.get(row)
            if not seeds:
                continue
            order = sorted(seeds)
            cells = [spread([float(seeds[s][m]) for s in order]) for m in METRICS]
            per_seed = ", ".join(f"{seeds[s]['mAP %']} (s{s})" for s in order)
            stops = ", ".join(seeds[s].get("best val loss @ step", "—") for s in order)
            label = LABELS.get(row, row)
            out.append(
                f"| {label} | {', '.join(map(str, order))} | "
                + " | ".join(cells)
                + f" | {per_seed} | {stops} |"
            )
    return "\n".join(out) + "\n"


def main() -> int:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else TABLES
    sys.stdout.write(render(collect(folder)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
