"""step.onnx: a streaming checkpoint exported, then stepped in onnxruntime
(runtime/stepping.py) exactly as PyTorch's banded training pass scores every frame."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model.export.graph import prepare_for_export
from model.gad import GADClassifier
from model.streaming.runner import StreamingGAD
from runtime.engine import EngineInputError
from runtime.errors import CheckpointError
from runtime.manifest import MANIFEST_FILE, PackageError, read_package
from runtime.stepping import StepEngine
from tests.model.helpers import FEATURE_DIM, tiny_model, tiny_streaming_model

pytestmark = pytest.mark.integration  # exports and verifies step.onnx packages

WINDOW = 6


@pytest.fixture(scope="module")
def exported(streaming_package: tuple[Path, Path]) -> tuple[GADClassifier, Path]:
    """The session's streaming package (W = 6) and its model, as the checkpoint holds it."""
    from model.checkpoint import load_checkpoint

    checkpoint, folder = streaming_package
    model = load_checkpoint(checkpoint)
    assert isinstance(model, GADClassifier) and model.config.stream_window == WINDOW
    return model, folder


def _banded(model: GADClassifier, features: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        logits = StreamingGAD(model, WINDOW).frame_logits(torch.from_numpy(features))
    return logits.numpy()


def test_the_package_is_a_step_package_verified_at_export(
    exported: tuple[GADClassifier, Path],
) -> None:
    _, folder = exported
    package = read_package(folder)
    assert package.is_streaming and not package.has_head
    step, verified = package.info.step, package.info.verify
    assert set(package.info.files) == {"step.onnx", "prefill.onnx"}
    assert step is not None and step.prefill is not None and step.prefill.file == "prefill.onnx"
    assert package.ring_shape == (2, 2, 2, WINDOW - 1, 16)  # tiny: 2 layers, 2 kv heads, d 16
    assert step.reach == 2 * (WINDOW - 1) + 1 and package.info.attention == "streaming"
    assert verified is not None and verified.max_abs_diff <= 1e-4
    assert verified.prefill is True  # checked in chunks too
    assert package.info.head is None and package.info.window is None
    with pytest.raises(PackageError, match="streaming package: it has no window"):
        package.window  # noqa: B018
    assert package.window_text == f"streaming window {WINDOW} (step.onnx)"


def test_the_load_report_names_a_streaming_window(exported: tuple[GADClassifier, Path]) -> None:
    from bench.load import LoadResult, Step, render_load

    step = Step(streams=4, replicas=2, seconds=10.0, fps=4.0)
    result = LoadResult([step], 250.0, None, step, 0, 2, 2)
    text = render_load(result, package=exported[1], cpu="test CPU")
    assert f"(features, streaming window {WINDOW} (step.onnx), 4 fps)" in text


def test_onnx_steps_equal_the_training_pass_on_every_frame_of_300(
    exported: tuple[GADClassifier, Path],
) -> None:
    model, folder = exported
    features = np.random.default_rng(0).standard_normal((2, 300, FEATURE_DIM), np.float32)
    reference = _banded(model, features)
    engine = StepEngine.load(folder, providers=("cpu",))
    streams = [engine.new_state() for _ in range(2)]
    got = np.stack([engine.step(features[:, t], streams) for t in range(300)], axis=1)
    np.testing.assert_allclose(got, reference, rtol=0, atol=1e-4)
    assert streams[0].frames == 300 and streams[0].mask.all()


@pytest.mark.parametrize("head", [0, 3, 25])
def test_prefill_in_chunks_equals_the_step_loop(
    exported: tuple[GADClassifier, Path], head: int
) -> None:
    model, folder = exported
    features = np.random.default_rng(2).standard_normal((60, FEATURE_DIM), np.float32)
    stepping = StepEngine.load(folder, providers=("cpu",))
    stepping._prefill = None  # the step-by-step loop
    stepped_state, stepped = stepping.replay(features)
    engine = StepEngine.load(folder, providers=("cpu",))
    assert engine._prefill is not None and engine.prefill_chunk == max(8, 2 * WINDOW)
    # a stream started here (front-padded chunks), then continued from its rings
    # (whole chunks, then single steps)
    state, got = engine.replay(features[:head])
    more = engine.run(features[head:], state)
    np.testing.assert_allclose(np.concatenate([got, more]), stepped, rtol=0, atol=1e-4)
    np.testing.assert_allclose(state.ring, stepped_state.ring, rtol=0, atol=1e-4)
    assert state.frames == 60 and state.mask.all()
    reference = _banded(model, features[None])[0]
    np.testing.assert_allclose(stepped, reference, rtol=0, atol=1e-4)
    with pytest.raises(EngineInputError, match="finite"):
        engine.run(np.full((3, FEATURE_DIM), np.nan, np.float32), engine.new_state())


def test_streams_of_any_age_batch_together(exported: tuple[GADClassifier, Path]) -> None:
    model, folder = exported
    features = np.random.default_rng(1).standard_normal((3, 20, FEATURE_DIM), np.float32)
    engine = StepEngine.load(folder, providers=("cpu",))
    # stream 0 starts now, stream 1 has 3 frames, stream 2 a full window (and more)
    head = {1: 3, 2: 12}
    streams = [engine.new_state()]
    for index in (1, 2):
        state, _ = engine.replay(features[index, : head[index]])
        streams.append(state)
    got = [engine.step(np.stack([features[0, 0], features[1, 3], features[2, 12]]), streams)]
    for index, frame in ((0, 0), (1, 3), (2, 12)):
        alone = _banded(model, features[index : index + 1, : frame + 1])[0, -1]
        np.testing.assert_allclose(got[0][index], alone, rtol=0, atol=1e-4)


def test_replaying_reach_rows_resumes_exactly_and_fewer_do_not(
    exported: tuple[GADClassifier, Path],
) -> None:
    _, folder = exported
    engine = StepEngine.load(folder, providers=("cpu",))
    rows = np.random.default_rng(2).standard_normal((80, FEATURE_DIM), np.float32)
    _, uninterrupted = engine.replay(rows)
    cut = 50  # the replica serving the stream dies after frame 49
    resumed, _ = engine.replay(rows[cut - engine.reach : cut])
    after = np.stack([engine.step(row[None], [resumed])[0] for row in rows[cut:]])
    np.testing.assert_allclose(after, uninterrupted[cut:], rtol=0, atol=1e-5)
    short, _ = engine.replay(rows[cut - (engine.window - 1) : cut])  # the ring's rows only
    approx = np.stack([engine.step(row[None], [short])[0] for row in rows[cut:]])
    gap = np.abs(approx - uninterrupted[cut:]).max(axis=-1)
    assert gap[0] > 1e-4  # its deeper layers saw less history than the lost ones did
    assert gap[engine.reach :].max() <= 1e-5  # until those frames left every ring


def test_bad_step_input_is_a_clear_error(exported: tuple[GADClassifier, Path]) -> None:
    _, folder = exported
    engine = StepEngine.load(folder, providers=("cpu",))
    streams = [engine.new_state()]
    with pytest.raises(EngineInputError, match=r"\[1, 16\]"):
        engine.step(np.zeros((1, 8), np.float32), streams)
    with pytest.raises(EngineInputError, match=r"\[1, 16\]"):
        engine.step(np.zeros((2, 16), np.float32), streams)  # two rows for one stream
    with pytest.raises(EngineInputError, match="finite"):
        engine.step(np.full((1, 16), np.nan, np.float32), streams)
    assert streams[0].frames == 0  # a refused step leaves the stream as it was


def test_a_broken_step_manifest_is_refused(
    exported: tuple[GADClassifier, Path], tmp_path: Path
) -> None:
    _, folder = exported
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    cases = (
        ({"layers": 0}, "layers must be a positive integer"),
        ({"window": 1}, "window must be a positive integer"),
        ({"outputs": {"logits": {"shape": ["batch", 3]}}}, "3 logits for 6 classes"),
    )
    for number, (change, message) in enumerate(cases):
        broken = tmp_path / f"broken-{number}"
        broken.mkdir()
        (broken / "step.onnx").write_bytes((folder / "step.onnx").read_bytes())
        bad = manifest | {"step": manifest["step"] | change}
        (broken / MANIFEST_FILE).write_text(json.dumps(bad))
        with pytest.raises(PackageError, match=message):
            read_package(broken)


def test_a_windowed_model_has_no_step_and_a_streaming_one_no_head() -> None:
    with pytest.raises(CheckpointError, match="no step"):
        prepare_for_export(tiny_model("discriminative"), streaming=True)
    with pytest.raises(CheckpointError, match=r"step\.onnx"):
        prepare_for_export(tiny_streaming_model(WINDOW))
