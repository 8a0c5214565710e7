"""The wire contract: docs/wire.md is written from service/wire.py's types, and what the
session sends has the fields those types say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from service import wire

ROOT = Path(__file__).resolve().parents[2]


def test_docs_wire_md_is_current() -> None:
    written = subprocess.run(
        [sys.executable, "-m", "service.wire"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert (ROOT / "docs" / "wire.md").read_text() == written, (
        "docs/wire.md is stale: run `python -m service.wire > docs/wire.md`"
    )


def test_every_message_type_is_documented_with_its_required_fields() -> None:
    text = wire.reference()
    for kind in (*wire.CLIENT, *wire.SERVER):
        assert f"### {kind.__name__}" in text
        for name in kind.__required_keys__:
            assert f"| `{name}` |" in text, (kind.__name__, name)
    assert "| `retry` | boolean |  |" in text  # optional fields say so
