"""How benchmark commands hand back their table: printed, and written to --out if given."""

from __future__ import annotations

import sys
from pathlib import Path


def emit_table(table: str, out: Path | None) -> int:
    sys.stdout.write(table + "\n")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(table + "\n")
    return 0
