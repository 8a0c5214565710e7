"""A new model version served without a restart (service/versions.py): loaded beside the
serving one, switched to by `POST /v1/models/reload` or by the folder watch; an open stream
moves at a frame boundary, keeps its window and loses no frame; an unverified version is
never served; one call rolls back."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from runtime.manifest import read_package
from tests.service.streaming import client, offline_scores, stream_rows

pytestmark = pytest.mark.integration  # trains and exports tiny models

FPS = 4.0


def export_version(models: Path, version: str, *, seed: int, verify: bool = True) -> Path:
    """A tiny GAD model (same classes and rows as the others, other weights) exported as
    `models/tiny/{version}`."""
    from model.checkpoint import save_checkpoint
    from model.export.package import export_package
    from tests.model.helpers import tiny_model, train_steps

    model = tiny_model("gad", seed=seed)
    train_steps(model, steps=3)
    checkpoint = models.parent / f"run-{version}" / "checkpoint"
    save_checkpoint(model, checkpoint, extra={"data": {"fps": FPS, "encoder": None}})
    result = export_package(checkpoint, models, name="tiny", version=version, verify=verify)
    return result.folder


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(model folder holding version 1, version 1, version 2 made aside)."""
    root = tmp_path_factory.mktemp("versions")
    one = export_version(root / "models", "1", seed=0)
    two = export_version(root / "aside", "2", seed=1)
    return root / "models" / "tiny", one, two


@pytest.fixture
def folder(versions: tuple[Path, Path, Path], tmp_path: Path) -> Path:
    """A fresh copy of the model folder with version 1 only."""
    target = tmp_path / "tiny"
    shutil.copytree(versions[0], target)
    return target


def rows_for(package: Path, n: int) -> np.ndarray:
    dim = read_package(package).feature_dim
    return np.random.default_rng(3).normal(size=(n, dim)).astype(np.float32)


def test_an_open_stream_moves_to_a_new_version_and_loses_no_frame(
    versions: tuple[Path, Path, Path], folder: Path
) -> None:
    _, one, two = versions
    rows = rows_for(one, 12)
    with client(folder, model_watch_s=0) as http:
        assert http.get("/v1/models").json()["versions"]["available"] == ["1"]
        with http.websocket_connect("/v1/streams/cam") as ws:
            assert ws.receive_json()["model"]["version"] == "1"
            before = stream_rows(ws, rows[:6], FPS)
            shutil.copytree(two, folder / "2")
            reply = http.post("/v1/models/reload", json={})
            assert reply.status_code == 200, reply.text
            assert reply.json()["serving"] == "2"
            after = stream_rows(ws, rows[6:], FPS, start=6)
        info = http.get("/v1/models").json()
        metrics = http.get("/metrics").text
        # A new stream starts on version 2.
        with http.websocket_connect("/v1/streams/new") as ws:
            assert ws.receive_json()["model"]["version"] == "2"
    assert [r["row"] for r in before + after] == list(range(12))  # every frame labelled
    assert [r["version"] for r in before + after] == ["1"] * 6 + ["2"] * 6
    # After the switch: exactly a fresh run of version 2 on the same rows (the window
    # carried over), before it version 1's.
    v1, v2 = offline_scores(one, rows), offline_scores(folder / "2", rows)
    assert [r["index"] for r in before] == v1[:6].argmax(1).tolist()
    assert [r["index"] for r in after] == v2[6:].argmax(1).tolist()
    np.testing.assert_allclose([r["score"] for r in after], v2[6:].max(1), atol=1e-5)
    assert info["versions"] == {
        "current": "2",
        "previous": "1",
        "available": ["1", "2"],
        "watching": False,
    }
    assert 'gad_model_reloads_total{result="switched"} 1.0' in metrics
    assert 'gad_stream_model_moves_total{result="moved"} 1.0' in metrics


def test_the_watch_switches_to_a_new_version_and_one_call_rolls_back(
    versions: tuple[Path, Path, Path], folder: Path
) -> None:
    two = versions[2]
    with client(folder, model_watch_s=0.2) as http:
        shutil.copytree(two, folder / "2")
        deadline = time.monotonic() + 30
        while http.get("/v1/models").json()["models"][0]["version"] != "2":
            assert time.monotonic() < deadline, "the watch did not switch to version 2"
            time.sleep(0.2)
        back = http.post("/v1/models/rollback")
        assert back.status_code == 200 and back.json()["serving"] == "1"
        with http.websocket_connect("/v1/streams/cam") as ws:
            assert ws.receive_json()["model"]["version"] == "1"
        # Nothing newer appeared since: the watch does not switch again by itself.
        time.sleep(0.6)
        assert http.get("/v1/models").json()["models"][0]["version"] == "1"
        again = http.post("/v1/models/rollback")  # to version 2, the one before
        assert again.json()["serving"] == "2"


def test_a_version_that_fails_its_checks_is_never_served(
    versions: tuple[Path, Path, Path], folder: Path, tmp_path: Path
) -> None:
    two = versions[2]
    unverified = export_version(tmp_path / "unverified", "3", seed=2, verify=False)
    with client(folder, model_watch_s=0) as http:
        shutil.copytree(unverified, folder / "3")
        refused = http.post("/v1/models/reload", json={"version": "3"})
        assert refused.status_code == 409 and "without verification" in refused.json()["detail"]
        broken = folder / "4"
        shutil.copytree(two, broken)
        graph = next(p for p in broken.iterdir() if p.suffix == ".onnx")
        data = graph.read_bytes()
        graph.write_bytes(data[:-16] + bytes(16 * [0x5A]))  # changed after export, same size
        refused = http.post("/v1/models/reload", json={"version": "4"})
        assert refused.status_code == 409 and "sha256" in refused.json()["detail"]
        assert http.post("/v1/models/reload", json={"version": "9"}).status_code == 409
        assert http.get("/v1/models").json()["models"][0]["version"] == "1"
        metrics = http.get("/metrics").text
    assert 'gad_model_reloads_total{result="refused"} 2.0' in metrics
