"""The README's Python examples run as written (tiny backbone, no download)."""

import re
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.integration  # runs the README's examples: train and export

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_model_and_checkpoint_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = [b for b in python_blocks() if "smollm2-135m" not in b]  # tiny ones only
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert (tmp_path / "runs" / "demo" / "checkpoint.json").is_file()
    logits = namespace["model"].class_logits(namespace["features"], namespace["mask"])
    assert logits.shape == (2, 5)
