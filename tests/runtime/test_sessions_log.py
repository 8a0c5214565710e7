"""What opening onnxruntime sessions logs: on a CPU-only build, no warning and one INFO line
that says what runs, however many graphs open; a provider the build has but cannot start is
a warning (a GPU host not using its GPU), once."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from runtime import sessions
from runtime.sessions import FAILED, NOT_IN_BUILD, open_session


@pytest.fixture
def graph(tmp_path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    model = helper.make_model(
        helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y]),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model.ir_version = 8
    path = tmp_path / "relu.onnx"
    onnx.save(model, path)
    return path


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test as a new process: nothing said yet."""
    monkeypatch.setattr(sessions, "_announced", set())
    monkeypatch.setattr(sessions, "_warned", set())


def test_a_cpu_only_build_says_once_at_info_what_runs(
    graph: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with caplog.at_level(logging.DEBUG, logger="runtime.sessions"):
        for _ in range(4):  # a server opens several graphs (pose detector, landmarks, head...)
            _, active, skipped = open_session(graph, ("tensorrt", "cuda", "cpu"), 1)
    assert active == ("CPUExecutionProvider",)
    assert skipped == {
        "TensorrtExecutionProvider": NOT_IN_BUILD,
        "CUDAExecutionProvider": NOT_IN_BUILD,
    }
    records = [r for r in caplog.records if r.name == "runtime.sessions"]
    assert [r for r in records if r.levelno >= logging.WARNING] == []
    infos = [r.getMessage() for r in records if r.levelno == logging.INFO]
    assert infos == ["onnxruntime runs on CPU (TensorRT, CUDA not in this onnxruntime build)"]
    # the reasons are still there for -v
    assert any("CUDAExecutionProvider not used" in r.getMessage() for r in records)


def test_cpu_only_asked_for_says_cpu_and_nothing_else(
    graph: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="runtime.sessions"):
        open_session(graph, ("cpu",), 1)
        open_session(graph, ("cpu",), 1)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "onnxruntime runs on CPU")
    ]


def test_a_provider_in_the_build_that_fails_to_start_is_a_warning_once(
    graph: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime as ort

    # a GPU build on a host without a driver: CUDA is listed, the session falls back to CPU
    monkeypatch.setattr(
        ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    with caplog.at_level(logging.INFO, logger="runtime.sessions"):
        for _ in range(3):
            # onnxruntime's own UserWarning for a provider its build lacks stands in here for
            # the failed start of a real GPU build
            with pytest.warns(UserWarning, match="CUDAExecutionProvider"):
                _, active, skipped = open_session(graph, ("cuda", "cpu"), 1)
    assert active == ("CPUExecutionProvider",)
    assert skipped == {"CUDAExecutionProvider": FAILED}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "CUDAExecutionProvider" in warnings[0]
    assert "failed to initialise" in warnings[0]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == ["onnxruntime runs on CPU"]
