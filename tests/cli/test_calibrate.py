"""`gad calibrate`: a package's temperature fitted on a dataset split with its own graphs
(head.onnx over each frame's window, or step.onnx), written into its manifest; the
ignored class left out, another class list refused, --dry-run writing nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gad.cli import main
from runtime.calibration import fit_temperature
from runtime.manifest import MANIFEST_FILE, read_package
from tests.model.helpers import FEATURE_DIM, NAMES
from training.calibration import held_out


def write_data(root: Path, names: list[str], *, seed: int = 0) -> Path:
    """Three test videos of random rows; the last class is ignored (its frames left out)."""
    rng = np.random.default_rng(seed)
    (root / "features").mkdir(parents=True)
    (root / "target_perframe").mkdir()
    sessions = []
    for i, frames in enumerate((30, 24, 18)):
        session = f"test_{i}"
        labels = rng.integers(0, len(names), frames)
        np.save(root / "features" / f"{session}.npy", rng.normal(size=(frames, FEATURE_DIM)))
        np.save(root / "target_perframe" / f"{session}.npy", np.eye(len(names))[labels])
        sessions.append(session)
    info = {
        "class_names": names,
        "ignore_index": len(names) - 1,
        "feature_dirs": ["features"],
        "train_session_set": [],
        "test_session_set": sessions,
    }
    (root / "data_info.json").write_text(json.dumps({"TINY": info}))
    return root


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_data(tmp_path / "data", [*NAMES, "ambiguous"])


@pytest.mark.parametrize("which", ["window", "streaming"])
def test_calibrate_writes_the_fitted_temperature(
    which: str,
    tiny_package: tuple[Path, Path],
    streaming_package: tuple[Path, Path],
    data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = (tiny_package if which == "window" else streaming_package)[1]
    folder = tmp_path / "pkg"
    shutil.copytree(source, folder)
    frames = held_out(read_package(folder), data, "test")
    labels = np.concatenate(
        [np.load(data / "target_perframe" / f"test_{i}.npy").argmax(1) for i in range(3)]
    )
    assert len(frames.labels) == int((labels != len(NAMES)).sum())  # ambiguous left out
    expected = fit_temperature(frames.logits, frames.labels)

    before = (folder / MANIFEST_FILE).read_text()
    assert (
        main(["calibrate", str(folder), "--data", str(data), "--split", "test", "--dry-run"]) == 0
    )
    assert (folder / MANIFEST_FILE).read_text() == before
    assert "unchanged (--dry-run)" in capsys.readouterr().out

    assert main(["calibrate", str(folder), "--data", str(data), "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert "temperature" in out and "calibration written" in out
    section = json.loads((folder / MANIFEST_FILE).read_text())["calibration"]
    assert section["temperature"] == pytest.approx(expected, abs=1e-4)
    assert section["frames"] == len(frames.labels)
    assert section["fitted_on"] == "data test split (3 videos)"
    assert set(section["before"]) == {"nll", "ece", "confident", "confident_wrong"}
    assert read_package(folder).temperature == section["temperature"]

    # refitted from the raw logits, not compounded; a floor above the optimum wins
    floor = round(expected, 2) + 1.0
    argv = ["calibrate", str(folder), "--data", str(data), "--split", "test"]
    assert main([*argv, "--min-temperature", str(floor)]) == 0
    section = json.loads((folder / MANIFEST_FILE).read_text())["calibration"]
    assert section["temperature"] == floor and section["min_temperature"] == floor
    assert section["optimum"] == pytest.approx(expected, abs=1e-4)


def test_calibrate_refuses_data_of_other_classes(
    tiny_package: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = write_data(tmp_path / "other", ["background", "run", "ambiguous"])
    folder = tmp_path / "pkg"
    shutil.copytree(tiny_package[1], folder)
    argv = ["calibrate", str(folder), "--data", str(other), "--split", "test"]
    assert main(argv) == 2
    assert "calibrate on data labelled as it was trained" in capsys.readouterr().err
    assert "calibration" not in json.loads((folder / MANIFEST_FILE).read_text())
