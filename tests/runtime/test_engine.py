import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from runtime.engine import Engine, EngineInputError, OnnxEngine
from runtime.errors import GADError
from tests.model.helpers import FEATURE_DIM


@pytest.fixture(scope="module")
def engine(tiny_package: tuple[Path, Path]) -> OnnxEngine:
    return OnnxEngine.load(tiny_package[1], providers=["cpu"], threads=1)


def test_scores_match_pytorch(tiny_package: tuple[Path, Path], engine: OnnxEngine) -> None:
    from model.torch_engine import TorchEngine

    torch_engine = TorchEngine.load(tiny_package[0], device="cpu")
    rng = np.random.default_rng(1)
    features = rng.normal(size=(6, 8, FEATURE_DIM)).astype(np.float32)
    mask = np.ones((6, 8), np.int64)
    mask[:3, :2] = 0
    features[:3, :2] = 0
    probs = engine.classify(features, mask)
    np.testing.assert_allclose(probs, torch_engine.classify(features, mask), atol=1e-5)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert len(set(probs.argmax(1).tolist())) > 1 or np.ptp(probs, axis=0).max() > 1e-3


def test_both_backends_implement_the_engine_protocol(
    tiny_package: tuple[Path, Path], engine: OnnxEngine
) -> None:
    from model.torch_engine import TorchEngine

    torch_engine = TorchEngine.load(tiny_package[0], device="cpu")
    for backend in (engine, torch_engine):
        assert isinstance(backend, Engine)
        assert backend.classes == engine.package.classes
        assert backend.feature_dim == FEATURE_DIM


@pytest.mark.parametrize(
    ("features", "mask", "message"),
    [
        (np.zeros((2, 8, FEATURE_DIM + 1)), np.ones((2, 8)), "windows must be"),
        (np.zeros((8, FEATURE_DIM)), np.ones(8), "windows must be"),
        (np.zeros((2, 8, FEATURE_DIM)), np.ones((2, 7)), "mask must be"),
        (np.full((1, 8, FEATURE_DIM), np.nan), np.ones((1, 8)), "NaN"),
        (np.full((1, 8, FEATURE_DIM), np.inf), np.ones((1, 8)), "NaN or infinity"),
        (np.zeros((1, 8, FEATURE_DIM)), np.full((1, 8), 2), "only 0"),
        (np.zeros((1, 8, FEATURE_DIM)), np.zeros((1, 8)), "at least one frame"),
        (np.array([[["a"] * FEATURE_DIM] * 8]), np.ones((1, 8)), "numbers"),
    ],
)
def test_bad_windows_get_clear_errors(
    engine: OnnxEngine, features: np.ndarray, mask: np.ndarray, message: str
) -> None:
    with pytest.raises(EngineInputError, match=message):
        engine.classify(features, mask)


def test_unavailable_providers_fall_back_with_a_reason(
    tiny_package: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="runtime.sessions"):
        engine = OnnxEngine.load(tiny_package[1], providers=["tensorrt", "cuda", "cpu"])
    assert engine.providers == ("CPUExecutionProvider",) and engine.device == "cpu"
    assert set(engine.skipped) == {"TensorrtExecutionProvider", "CUDAExecutionProvider"}
    assert "CUDAExecutionProvider not used" in caplog.text  # at DEBUG: not in this build
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    with pytest.raises(GADError, match="none of the providers"):
        OnnxEngine.load(tiny_package[1], providers=["cuda"])
    with pytest.raises(GADError, match="unknown onnxruntime provider 'tpu'"):
        OnnxEngine.load(tiny_package[1], providers=["tpu"])


def test_serving_path_never_imports_torch(tiny_package: tuple[Path, Path]) -> None:
    code = (
        "import sys, numpy as np\n"
        "from runtime.engine import OnnxEngine\n"
        "import service.batcher\n"
        f"e = OnnxEngine.load({str(tiny_package[1])!r}, providers=['cpu'])\n"
        f"e.classify(np.zeros((1, 8, {FEATURE_DIM}), np.float32), np.ones((1, 8)))\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
