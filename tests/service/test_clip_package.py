"""A package with a clip model (clip.onnx: step / task / next step of a whole clip): read,
checked, loaded, described and answered in /classify's "procedure"."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from runtime.engine import ClipEngine, ClipModel, EngineInputError
from runtime.errors import GADError
from runtime.manifest import (
    CLIP_FILE,
    CLIP_OUTPUTS,
    MANIFEST_FILE,
    PackageError,
    file_digest,
    read_package,
)
from runtime.windowing import build_clip
from tests.model.helpers import FEATURE_DIM
from tests.service.streaming import client

FPS = 4.0
MAX_FRAMES = 8
STEPS = ["fill kettle", "boil water", "add coffee", "pour water", "stir", "serve"]
TASKS = ["make coffee", "make tea", "make cocoa"]


def clip_graph(feature_dim: int, steps: int, tasks: int, seed: int = 0) -> onnx.ModelProto:
    """A tiny clip model: [masked mean of the rows, last row] → three linear heads. The
    last row makes it sensitive to where the padding is; the mean, to which rows it reads."""
    rng = np.random.default_rng(seed)
    init = []
    nodes = [
        helper.make_node("Cast", ["mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "axis2"], ["mask3"]),
        helper.make_node("Mul", ["features", "mask3"], ["kept"]),
        helper.make_node("ReduceSum", ["kept", "axis1"], ["total"], keepdims=0),
        helper.make_node("ReduceSum", ["maskf", "axis1"], ["count"], keepdims=1),
        helper.make_node("Div", ["total", "count"], ["mean"]),
        helper.make_node("Gather", ["features", "last"], ["final"], axis=1),
        helper.make_node("Concat", ["mean", "final"], ["pooled"], axis=1),
    ]
    init += [
        numpy_helper.from_array(np.array([2], np.int64), "axis2"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        numpy_helper.from_array(np.array(-1, np.int64), "last"),
    ]
    outputs = []
    for name, size in zip(CLIP_OUTPUTS, (steps, tasks, steps), strict=True):
        weight = rng.normal(scale=0.7, size=(2 * feature_dim, size)).astype(np.float32)
        bias = rng.normal(scale=0.1, size=size).astype(np.float32)
        init += [
            numpy_helper.from_array(weight, f"{name}_w"),
            numpy_helper.from_array(bias, f"{name}_b"),
        ]
        nodes.append(helper.make_node("Gemm", ["pooled", f"{name}_w", f"{name}_b"], [name]))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", size]))
    inputs = [
        helper.make_tensor_value_info(
            "features", TensorProto.FLOAT, ["batch", "time", feature_dim]
        ),
        helper.make_tensor_value_info("mask", TensorProto.INT64, ["batch", "time"]),
    ]
    graph = helper.make_graph(nodes, "clip", inputs, outputs, init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def add_clip_model(folder: Path, steps: list[str], tasks: list[str], max_frames: int) -> None:
    """What `gad export` with a clip model writes: clip.onnx, manifest["clip"], its hash."""
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    dim = manifest["feature_dim"]
    onnx.save(clip_graph(dim, len(steps), len(tasks)), folder / CLIP_FILE)
    sizes = {"step_logits": len(steps), "task_logits": len(tasks), "next_logits": len(steps)}
    manifest["clip"] = {
        "file": CLIP_FILE,
        "kind": "gad",
        "steps": steps,
        "tasks": tasks,
        "max_frames": max_frames,
        "inputs": {
            "features": {"shape": ["batch", "time", dim], "dtype": "float32"},
            "mask": {"shape": ["batch", "time"], "dtype": "int64"},
        },
        "outputs": {
            name: {"shape": ["batch", size], "dtype": "float32"} for name, size in sizes.items()
        },
        "metrics": None,
        "training": None,
    }
    manifest["files"][CLIP_FILE] = file_digest(folder / CLIP_FILE)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))


@pytest.fixture(scope="module")
def clip_package(tiny_package: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("clip") / "coin" / "1"
    shutil.copytree(tiny_package[1], folder)
    add_clip_model(folder, STEPS, TASKS, MAX_FRAMES)
    return folder


@pytest.fixture
def package(clip_package: Path, tmp_path: Path) -> Path:
    """A copy of the clip package of this test's own, to break."""
    copy = tmp_path / "coin" / "1"
    shutil.copytree(clip_package, copy)
    return copy


def edit_clip(folder: Path, **changes: object) -> None:
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["clip"].update(changes)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True)


def direct_scores(folder: Path, features: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    """clip.onnx in a plain onnxruntime session: step, task, next-step probabilities."""
    session = ort.InferenceSession(str(folder / CLIP_FILE), providers=["CPUExecutionProvider"])
    feeds = {"features": features.astype(np.float32), "mask": mask.astype(np.int64)}
    return [softmax(out) for out in session.run(list(CLIP_OUTPUTS), feeds)]


def rows_of(n: int, seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, FEATURE_DIM)).astype(np.float32)


# --- the package ---------------------------------------------------------------------------


def test_reads_a_package_with_a_clip_model(clip_package: Path, tiny_package) -> None:
    package = read_package(clip_package)
    assert package.clip is not None
    assert package.clip.steps == tuple(STEPS) and package.clip.tasks == tuple(TASKS)
    assert package.clip.max_frames == MAX_FRAMES
    assert package.clip_path == clip_package / CLIP_FILE and package.clip_path.is_file()
    plain = read_package(tiny_package[1])
    assert plain.clip is None and plain.clip_path is None


def test_a_null_clip_section_means_no_clip_model(package: Path) -> None:
    manifest = json.loads((package / MANIFEST_FILE).read_text())
    manifest["clip"] = None
    (package / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert read_package(package).clip is None


def test_a_package_needs_a_head_or_a_clip_model(package: Path) -> None:
    manifest = json.loads((package / MANIFEST_FILE).read_text())
    manifest["head"] = None  # clip-only: accepted, and says so
    (package / MANIFEST_FILE).write_text(json.dumps(manifest))
    clip_only = read_package(package, check_hashes=False)
    assert not clip_only.has_head
    with pytest.raises(PackageError, match="clip-only"):
        clip_only.head_path  # noqa: B018
    manifest["clip"] = None
    (package / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match="head is null and there is no clip or step model"):
        read_package(package)


def test_refuses_a_tampered_clip_model(package: Path) -> None:
    clip = package / CLIP_FILE
    data = bytearray(clip.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    clip.write_bytes(bytes(data))
    with pytest.raises(PackageError, match=r"clip\.onnx does not match its sha256"):
        read_package(package)
    assert read_package(package, check_hashes=False).clip is not None  # sizes still agree


def test_refuses_a_missing_clip_model(package: Path) -> None:
    (package / CLIP_FILE).unlink()
    with pytest.raises(PackageError, match=r"clip\.onnx is missing"):
        read_package(package)


def test_refuses_a_clip_model_not_listed_in_files(package: Path) -> None:
    manifest = json.loads((package / MANIFEST_FILE).read_text())
    del manifest["files"][CLIP_FILE]
    (package / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match=r"\['clip\.onnx'\] not listed"):
        read_package(package)


def _outputs(**sizes: int) -> dict:
    base = {"step_logits": len(STEPS), "task_logits": len(TASKS), "next_logits": len(STEPS)}
    return {name: {"shape": ["batch", n], "dtype": "float32"} for name, n in (base | sizes).items()}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"steps": STEPS[:3]}, r"step_logits of shape \['batch', 6\] for 3 steps"),
        ({"tasks": [*TASKS, "make juice"]}, "task_logits .* for 4 tasks"),
        ({"outputs": _outputs(next_logits=5)}, "next_logits .* for 6 steps"),
        ({"outputs": _outputs(task_logits=2)}, "task_logits .* for 3 tasks"),
        ({"outputs": {}}, "step_logits of shape None"),
        ({"steps": ["only"]}, "steps must be a list of at least 2 unique names"),
        ({"steps": [*STEPS[:-1], STEPS[0]]}, "steps must be .* unique"),
        ({"tasks": [1, 2, 3]}, "tasks must be a list"),
        ({"tasks": "make coffee"}, "tasks must be a list"),
        ({"max_frames": 0}, "max_frames must be a positive integer, got 0"),
        ({"max_frames": -4}, "max_frames must be a positive integer"),
        ({"max_frames": 2.5}, "max_frames must be a positive integer"),
        ({"max_frames": "32"}, "max_frames must be a positive integer"),
        ({"max_frames": True}, "max_frames must be a positive integer"),
        ({"max_frames": None}, "max_frames must be a positive integer"),
        (
            {"inputs": {"features": {"shape": ["batch", "time", FEATURE_DIM + 1]}}},
            rf"features of shape \['batch', 'time', {FEATURE_DIM + 1}\], the head reads "
            rf"{FEATURE_DIM}-d",
        ),
        ({"inputs": {}}, "features of shape None"),
        ({"file": None}, "needs a 'file'"),
    ],
)
def test_refuses_an_inconsistent_clip_section(package: Path, change: dict, message: str) -> None:
    edit_clip(package, **change)
    with pytest.raises(PackageError, match=message) as refused:
        read_package(package)
    assert str(package / MANIFEST_FILE) in str(refused.value)  # names the manifest


def test_refuses_a_clip_section_that_is_not_an_object(package: Path) -> None:
    manifest = json.loads((package / MANIFEST_FILE).read_text())
    manifest["clip"] = CLIP_FILE
    (package / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match="clip must be an object or null, got str"):
        read_package(package)


# --- the engine ----------------------------------------------------------------------------


def test_clip_engine_scores_a_batch_like_onnxruntime(clip_package: Path, tiny_package) -> None:
    engine = ClipEngine.load(clip_package, providers=["cpu"], threads=1)
    assert isinstance(engine, ClipModel)
    assert engine.providers == ("CPUExecutionProvider",) and engine.device == "cpu"
    assert engine.steps == tuple(STEPS) and engine.tasks == tuple(TASKS)
    assert engine.max_frames == MAX_FRAMES
    clips = [build_clip(rows_of(n, seed=n), MAX_FRAMES) for n in (3, 8, 30)]
    features = np.stack([c[0] for c in clips])
    mask = np.stack([c[1] for c in clips])
    scores = engine.classify(features, mask)
    assert [s.shape for s in scores] == [(3, len(STEPS)), (3, len(TASKS)), (3, len(STEPS))]
    for got, want in zip(scores, direct_scores(clip_package, features, mask), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
        np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)
    alone = engine.classify(features[1:2], mask[1:2])  # batch-independent
    np.testing.assert_allclose(alone.task[0], scores.task[1], atol=1e-6)
    empty = engine.classify(np.zeros((0, MAX_FRAMES, FEATURE_DIM)), np.zeros((0, MAX_FRAMES)))
    assert [s.shape for s in empty] == [(0, len(STEPS)), (0, len(TASKS)), (0, len(STEPS))]
    with pytest.raises(EngineInputError, match="windows must be"):
        engine.classify(np.zeros((1, MAX_FRAMES, FEATURE_DIM + 1)), np.ones((1, MAX_FRAMES)))
    with pytest.raises(EngineInputError, match="at least one frame"):
        engine.classify(np.zeros((1, MAX_FRAMES, FEATURE_DIM)), np.zeros((1, MAX_FRAMES)))
    with pytest.raises(GADError, match="has no clip model"):
        ClipEngine.load(tiny_package[1], providers=["cpu"])


# --- the service ---------------------------------------------------------------------------


def test_models_lists_the_clip_model(clip_package: Path, tiny_package) -> None:
    with client(clip_package) as http:
        (model,) = http.get("/v1/models").json()["models"]
    assert model["clip"] == {
        "steps": STEPS,
        "tasks": TASKS,
        "max_frames": MAX_FRAMES,
        "providers": ["CPUExecutionProvider"],
    }
    with client(tiny_package[1]) as http:
        (plain,) = http.get("/v1/models").json()["models"]
    assert plain["clip"] is None


def assert_answer(answer: dict, probs: np.ndarray, names: list[str]) -> None:
    best = int(probs.argmax())
    assert answer["label"] == names[best] and answer["index"] == best
    assert answer["score"] == pytest.approx(float(probs[best]), abs=1e-6)
    order = np.argsort(-probs)[:5]
    assert [name for name, _ in answer["top"]] == [names[i] for i in order]
    assert [score for _, score in answer["top"]] == pytest.approx(probs[order].tolist(), abs=1e-6)


@pytest.mark.parametrize("n_rows", [30, 5])
def test_classify_answers_the_procedure_like_the_clip_model(clip_package: Path, n_rows) -> None:
    rows = rows_of(n_rows)
    with client(clip_package) as http:
        response = http.post("/classify", json={"fps": FPS, "features": rows.tolist()})
        doubled = np.repeat(rows, 2, axis=0)  # the same clip at 8 fps: resampled to 4 first
        resampled = http.post("/classify", json={"fps": 2 * FPS, "features": doubled.tolist()})
    assert response.status_code == 200, response.text
    body = response.json()
    procedure = body["procedure"]
    assert set(procedure) == {"step", "task", "next_step", "frames", "rows"}
    assert procedure["rows"] == n_rows and procedure["frames"] == min(n_rows, MAX_FRAMES)
    features, mask = build_clip(rows, MAX_FRAMES)
    step, task, next_step = (p[0] for p in direct_scores(clip_package, features[None], mask[None]))
    assert_answer(procedure["step"], step, STEPS)
    assert_answer(procedure["task"], task, TASKS)
    assert_answer(procedure["next_step"], next_step, STEPS)
    assert len(procedure["step"]["top"]) == 5 and len(procedure["task"]["top"]) == len(TASKS)
    if n_rows > MAX_FRAMES:  # the service subsampled: reading every row answers otherwise
        every = direct_scores(clip_package, rows[None], np.ones((1, n_rows)))
        assert not np.allclose(every[1][0], task, atol=1e-4)
    assert resampled.json()["procedure"] == procedure
    # the rest of the response is what a package without a clip model answers
    assert {"fps", "frames", "segments", "clip", "source", "model"} <= set(body)
    assert len(body["frames"]) == n_rows


def test_the_torch_backend_still_answers_the_procedure(clip_package: Path, tiny_package) -> None:
    rows = rows_of(20)
    replies = {}
    for backend in ("onnx", "torch"):
        settings = {"backend": backend, "checkpoint": tiny_package[0], "torch_dtype": "float32"}
        with client(clip_package, **settings) as http:
            body = http.post("/classify", json={"fps": FPS, "features": rows.tolist()}).json()
        replies[backend] = body["procedure"]
    assert replies["torch"] == replies["onnx"]


def test_no_procedure_without_a_clip_model(tiny_package) -> None:
    with client(tiny_package[1]) as http:
        body = http.post("/classify", json={"fps": FPS, "features": rows_of(12).tolist()}).json()
    assert "procedure" not in body and "clip" in body and len(body["frames"]) == 12


def test_serving_a_clip_model_never_imports_torch(clip_package: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "import service.app\n"
        "from service.classify import procedure\n"
        "from runtime.engine import ClipEngine\n"
        f"e = ClipEngine.load({str(clip_package)!r}, providers=['cpu'])\n"
        f"p = procedure(e, np.ones((20, {FEATURE_DIM}), np.float32))\n"
        f"assert p['frames'] == {MAX_FRAMES} and p['rows'] == 20, p\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
