"""A calibrated package (its manifest's `calibration`): every probability it serves is
softmax(logits / T) — the window head and the streaming step, on a stream and on /classify
alike, in ONNX and PyTorch — and a package without one serves what it always did."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from runtime.calibration import softmax
from runtime.engine import OnnxEngine
from runtime.manifest import MANIFEST_FILE, CalibrationSection, read_package
from runtime.stepping import StepEngine
from runtime.windowing import build_windows
from tests.model.helpers import FEATURE_DIM
from tests.service.streaming import client, stream_rows
from training.calibration import write_calibration

FPS = 4.0
T = 2.5


def calibrated(source: Path, tmp_path: Path) -> Path:
    folder = tmp_path / source.parent.name / source.name
    shutil.copytree(source, folder)
    write_calibration(read_package(folder), CalibrationSection(T, fitted_on="a test"))
    return folder


def rows_of(seed: int, count: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, FEATURE_DIM)).astype(np.float32)


def window_logits(package: Path, rows: np.ndarray) -> np.ndarray:
    pkg = read_package(package)
    engine = OnnxEngine.load(pkg, providers=["cpu"])
    return engine.logits(*build_windows(rows, np.arange(len(rows)), pkg.window))


def test_the_manifest_gains_a_section_and_nothing_else(
    tiny_package: tuple[Path, Path], tmp_path: Path
) -> None:
    folder = calibrated(tiny_package[1], tmp_path)
    before = json.loads((tiny_package[1] / MANIFEST_FILE).read_text())
    after = json.loads((folder / MANIFEST_FILE).read_text())
    assert after.pop("calibration") == {"temperature": T, "fitted_on": "a test"}
    assert after == before
    assert list(json.loads((folder / MANIFEST_FILE).read_text()))[-2:] == ["calibration", "files"]
    assert read_package(folder).temperature == T
    assert read_package(tiny_package[1]).temperature == 1.0  # absent: T = 1
    write_calibration(read_package(folder), None)
    assert json.loads((folder / MANIFEST_FILE).read_text()) == before


def test_a_window_head_serves_calibrated_probabilities(
    tiny_package: tuple[Path, Path], tmp_path: Path
) -> None:
    folder = calibrated(tiny_package[1], tmp_path)
    rows = rows_of(0, 20)
    logits = window_logits(folder, rows)
    expected = softmax(logits, T)
    pkg = read_package(folder)
    engine = OnnxEngine.load(pkg, providers=["cpu"])
    windows, mask = build_windows(rows, np.arange(len(rows)), pkg.window)
    np.testing.assert_allclose(engine.classify(windows, mask), expected, atol=1e-6)
    plain = OnnxEngine.load(tiny_package[1], providers=["cpu"]).classify(windows, mask)
    np.testing.assert_allclose(plain, softmax(logits), atol=1e-6)
    assert (plain.max(1) > expected.max(1)).all()  # T > 1 softens; the labels stay
    assert (plain.argmax(1) == expected.argmax(1)).all()
    with client(folder) as http:
        body = http.post("/v1/classify", json={"fps": FPS, "features": rows.tolist()}).json()
        with http.websocket_connect("/v1/streams/cal") as ws:
            ws.receive_json()
            replies = stream_rows(ws, rows, FPS)
    np.testing.assert_allclose([f["score"] for f in body["frames"]], expected.max(1), atol=1e-5)
    np.testing.assert_allclose([r["score"] for r in replies], expected.max(1), atol=1e-5)
    assert [r["index"] for r in replies] == [f["index"] for f in body["frames"]]


def test_the_torch_backend_applies_the_same_temperature(
    tiny_package: tuple[Path, Path], tmp_path: Path
) -> None:
    from model.torch_engine import TorchBackend

    folder = calibrated(tiny_package[1], tmp_path)
    pkg = read_package(folder)
    rows = rows_of(1, 12)
    windows, mask = build_windows(rows, np.arange(len(rows)), pkg.window)
    torch_head = TorchBackend(tiny_package[0], dtype="float32", device="cpu").head(pkg)
    onnx_head = OnnxEngine.load(pkg, providers=["cpu"])
    np.testing.assert_allclose(
        torch_head.classify(windows, mask), onnx_head.classify(windows, mask), atol=1e-5
    )


def test_a_streaming_step_serves_calibrated_probabilities(
    streaming_package: tuple[Path, Path], tmp_path: Path
) -> None:
    from model.torch_engine import TorchBackend

    folder = calibrated(streaming_package[1], tmp_path)
    rows = rows_of(2, 18)
    engine = StepEngine.load(folder, providers=("cpu",))
    assert engine.temperature == T
    logits = engine.replay(rows)[1]
    expected = softmax(logits, T)
    np.testing.assert_allclose(engine.probabilities(logits), expected, atol=1e-6)
    torch_step = TorchBackend(streaming_package[0], dtype="float32", device="cpu").step(
        read_package(folder)
    )
    assert torch_step.temperature == T
    with client(folder) as http:
        body = http.post("/v1/classify", json={"fps": FPS, "features": rows.tolist()}).json()
        with http.websocket_connect("/v1/streams/cal") as ws:
            ws.receive_json()
            replies = stream_rows(ws, rows, FPS)
    np.testing.assert_allclose([f["score"] for f in body["frames"]], expected.max(1), atol=1e-5)
    np.testing.assert_allclose([r["score"] for r in replies], expected.max(1), atol=1e-5)


def test_a_bad_temperature_is_refused(tiny_package: tuple[Path, Path], tmp_path: Path) -> None:
    from runtime.manifest import PackageError

    folder = tmp_path / "bad"
    shutil.copytree(tiny_package[1], folder)
    data = json.loads((folder / MANIFEST_FILE).read_text())
    data["calibration"] = {"temperature": -1}
    (folder / MANIFEST_FILE).write_text(json.dumps(data))
    with pytest.raises(PackageError, match="calibration temperature"):
        read_package(folder)
