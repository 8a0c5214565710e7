"""The manifest as one typed contract (runtime/manifest/): what `gad export` wrote before
the contract was typed reads back unchanged (`Manifest.from_json(d).to_json() == d`, key
order included), and a malformed manifest is refused with a PackageError that says where."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runtime.manifest import (
    IMAGE_KIND,
    MANIFEST_FILE,
    POSE_KIND,
    FileDigest,
    HeadSection,
    Manifest,
    PackageError,
    TensorSpec,
    read_package,
)
from runtime.windowing import WindowSpec

CLASSES = ["Background", "clap hands", "jump"]
DIGEST = {"sha256": "9b2d3a03e65720be1e9204c87f392fdb4a811ae459870b7e2ebec4460991fe83", "bytes": 9}


def tensor(*shape: object, dtype: str = "float32") -> dict[str, Any]:
    return {"shape": list(shape), "dtype": dtype}


# manifest.json as `gad export` wrote it before the manifest was typed (schema_version 1),
# trimmed from the demo package: a windowed GAD model with an image encoder.
WINDOWED: dict[str, Any] = {
    "schema_version": 1,
    "name": "demo",
    "version": "1",
    "created": "2026-12-06T07:08:44+00:00",
    "kind": "gad",
    "classes": CLASSES,
    "background_index": 0,
    "fps": 4.0,
    "feature_dim": 1280,
    "window": {"long_frames": 32, "short_frames": 8, "long_stride": 1},
    "head": {
        "file": "head.onnx",
        "files": ["head.onnx"],
        "opset": 18,
        "inputs": {
            "features": tensor("batch", "time", 1280),
            "mask": tensor("batch", "time", dtype="int64"),
        },
        "outputs": {"logits": tensor("batch", 3)},
    },
    "encoder": {
        "spec": "efficientnet-lite0",
        "name": "efficientnet-lite0",
        "feature_dim": 1280,
        "preprocess": {
            "size": 224,
            "resize": "shorter-side-then-center-crop",
            "resize_to": 256,
            "mean": [0.498, 0.498, 0.498],
            "std": [0.502, 0.502, 0.502],
            "color": "RGB",
            "layout": "NCHW",
        },
        "file": "encoder.onnx",
        "verify": {"max_abs_diff": 5.8e-06, "batch_sizes": [1, 3], "opset": 18, "bytes": 9},
    },
    "backbone": {"spec": "tiny", "model_type": "llama", "hidden_size": 64, "num_layers": 2},
    "parameters": {"total": 231994, "trainable": 124794},
    "training": {"steps": 900, "epochs_done": 19, "seconds": 71.9, "task": "frame"},
    "metrics": {"map": 0.906, "cmap": 0.983, "frame_accuracy": 0.891, "skipped": []},
    "verify": {
        "max_abs_diff": 1.43e-06,
        "tolerance": 0.001,
        "windows": 3,
        "argmax_agreement": 1.0,
        "provider": "CPUExecutionProvider",
    },
    "files": {"encoder.onnx": DIGEST, "head.onnx": DIGEST},
}

# The pose demo's encoder section (two graphs, a source, the conversion's own check).
POSE_ENCODER: dict[str, Any] = {
    "kind": "pose-blazepose",
    "spec": "pose-blazepose",
    "name": "pose-blazepose",
    "feature_dim": 40,
    "preprocess": {"resize": "letterbox", "size": 512, "color": "RGB", "layout": "NHWC"},
    "detector": "pose_detection.onnx",
    "landmarks": "pose_landmark.onnx",
    "file": "pose_landmark.onnx",
    "files": ["pose_detection.onnx"],
    "source": "mediapipe==0.10.14",
    "verify": {"pose_landmark.onnx": {"max_abs_diff": 0.0035, "max_rel_diff": 1.7e-05}},
}
POSE = WINDOWED | {
    "name": "demo-pose",
    "feature_dim": 40,
    "head": WINDOWED["head"] | {"inputs": {"features": tensor("batch", "time", 40)}},
    "encoder": POSE_ENCODER,
    "metrics": None,
    "files": {"head.onnx": DIGEST, "pose_detection.onnx": DIGEST, "pose_landmark.onnx": DIGEST},
}

# A streaming package: step.onnx + prefill.onnx, no head and no window, exported without
# an encoder or metrics.
STREAMING: dict[str, Any] = {
    key: value for key, value in WINDOWED.items() if key not in ("verify", "files")
} | {
    "name": "stream",
    "kind": "discriminative",
    "feature_dim": 16,
    "window": None,
    "head": None,
    "encoder": None,
    "training": None,
    "metrics": None,
    "verify": {
        "max_abs_diff": 3.16e-06,
        "tolerance": 0.001,
        "streams": 2,
        "frames": 35,
        "argmax_agreement": 1.0,
        "provider": "CPUExecutionProvider",
        "prefill": True,
    },
    "step": {
        "file": "step.onnx",
        "files": ["step.onnx"],
        "opset": 18,
        "window": 16,
        "layers": 2,
        "kv_heads": 2,
        "head_dim": 16,
        "reach": 31,
        "inputs": {
            "features": tensor("batch", 16),
            "ring": tensor("batch", 2, 2, 2, 15, 16),
            "ring_mask": tensor("batch", 15, dtype="int64"),
        },
        "outputs": {
            "logits": tensor("batch", 3),
            "rows": tensor("batch", 2, 2, 2, 16),
        },
        "prefill": {"file": "prefill.onnx", "files": ["prefill.onnx"], "frames": 32},
    },
    "attention": "streaming",
    "files": {"prefill.onnx": DIGEST, "step.onnx": DIGEST},
}

STEPS, TASKS = ["pour water", "add coffee", "stir"], ["make coffee", "make tea"]
CLIP_SECTION: dict[str, Any] = {
    "file": "clip.onnx",
    "files": ["clip.onnx"],
    "kind": "gad",
    "steps": STEPS,
    "tasks": TASKS,
    "max_frames": 24,
    "tokens_per_frame": 1,
    "frame_tokens": "expand",
    "frame_separator": None,
    "questions": ["Which step?", "Which task?", "Which step next?"],
    "inputs": {
        "features": tensor("batch", "time", 1280),
        "mask": tensor("batch", "time", dtype="int64"),
    },
    "outputs": {
        "step_logits": tensor("batch", 3),
        "task_logits": tensor("batch", 2),
        "next_logits": tensor("batch", 3),
    },
    "backbone": {"spec": "tiny"},
    "training": {"steps": 40, "task": "clip"},
    "metrics": None,
    "verify": {
        "max_abs_diff": 2e-06,
        "tolerance": 0.001,
        "windows": 3,
        "argmax_agreement": 1.0,
        "provider": "CPUExecutionProvider",
    },
}
# A clip model beside the windowed head, and a clip-only package (no head, no background).
WITH_CLIP = {key: value for key, value in WINDOWED.items() if key != "files"} | {
    "clip": CLIP_SECTION,
    "files": WINDOWED["files"] | {"clip.onnx": DIGEST},
}
CLIP_ONLY = WITH_CLIP | {
    "classes": STEPS,
    "background_index": None,
    "window": None,
    "head": None,
    "verify": None,
    "files": {"clip.onnx": DIGEST, "encoder.onnx": DIGEST},
}
TODAY = {
    "windowed": WINDOWED,
    "pose": POSE,
    "streaming": STREAMING,
    "with-clip": WITH_CLIP,
    "clip-only": CLIP_ONLY,
}


@pytest.mark.parametrize("data", TODAY.values(), ids=TODAY.keys())
def test_today_s_manifests_round_trip_exactly(data: dict[str, Any]) -> None:
    manifest = Manifest.from_json(copy.deepcopy(data))
    assert manifest.to_json() == data
    assert json.dumps(manifest.to_json(), indent=2) == json.dumps(data, indent=2)  # key order
    assert Manifest.from_json(manifest.to_json()) == manifest


def test_exported_packages_round_trip_byte_for_byte(
    tiny_package: tuple[Path, Path], streaming_package: tuple[Path, Path]
) -> None:
    for _, folder in (tiny_package, streaming_package):
        text = (folder / MANIFEST_FILE).read_text()
        manifest = Manifest.from_json(json.loads(text))
        assert json.dumps(manifest.to_json(), indent=2) + "\n" == text
        assert read_package(folder).info == manifest


def test_the_sections_are_typed() -> None:
    windowed = Manifest.from_json(copy.deepcopy(WINDOWED))
    assert windowed.window == WindowSpec(32, 8, 1) and windowed.classes == tuple(CLASSES)
    assert windowed.head is not None and windowed.head.outputs is not None
    assert windowed.head.outputs["logits"] == TensorSpec(("batch", 3), "float32")
    assert windowed.encoder is not None and windowed.encoder.kind == IMAGE_KIND
    assert "kind" not in windowed.encoder.to_json()  # an image encoder is written without
    assert windowed.verify is not None and windowed.verify.probe_text == "3 windows"
    assert windowed.files["head.onnx"] == FileDigest(DIGEST["sha256"], 9)
    assert windowed.step is None and windowed.clip is None and windowed.metrics is not None

    pose = Manifest.from_json(copy.deepcopy(POSE))
    assert pose.encoder is not None and pose.encoder.kind == POSE_KIND
    assert pose.encoder.graph_files == ("pose_landmark.onnx", "pose_detection.onnx")

    streaming = Manifest.from_json(copy.deepcopy(STREAMING))
    step = streaming.step
    assert step is not None and step.prefill is not None and step.prefill.frames == 32
    assert step.ring_shape == (2, 2, 2, 15, 16) and step.reach == 31
    assert streaming.verify is not None and streaming.verify.prefill is True
    assert streaming.verify.probe_text == "35 steps of 2 streams"
    assert streaming.graph_files == ("step.onnx", "prefill.onnx")

    clip = Manifest.from_json(copy.deepcopy(CLIP_ONLY)).clip
    assert clip is not None and clip.steps == tuple(STEPS) and clip.max_frames == 24


def test_a_manifest_built_in_code_writes_what_it_reads() -> None:
    head = HeadSection(
        "head.onnx",
        files=("head.onnx",),
        outputs={"logits": TensorSpec(("batch", 2))},
    )
    built = Manifest(
        name="m",
        version="3",
        kind="discriminative",
        classes=("no", "yes"),
        background_index=None,
        fps=2.0,
        feature_dim=8,
        window=WindowSpec(0, 4, 1),
        head=head,
        files={"head.onnx": FileDigest("0" * 64, 1)},
    )
    data = built.to_json()
    assert data["schema_version"] == 1 and data["encoder"] is None and data["verify"] is None
    assert "step" not in data and "clip" not in data and "attention" not in data
    assert Manifest.from_json(data) == built


def test_keys_this_version_does_not_know_are_kept() -> None:
    data = copy.deepcopy(WINDOWED)
    data["notes"] = {"by": "a newer exporter"}
    data["head"]["precision"] = "fp16"
    manifest = Manifest.from_json(data)
    assert manifest.extra == {"notes": {"by": "a newer exporter"}}
    assert manifest.to_json() == data


def test_a_package_reads_its_typed_manifest(tiny_package: tuple[Path, Path]) -> None:
    package = read_package(tiny_package[1])
    assert package.kind == "gad" and package.metrics is None and package.encoder_name is None
    assert package.window == package.info.window and package.window_text == "window 4+4"
    assert package.info.to_json() == json.loads((tiny_package[1] / MANIFEST_FILE).read_text())
    assert package.window_json == package.info.window_json == package.info.to_json()["window"]
    assert package.step is None and package.clip is None and package.encoder is None


Edit = Callable[[dict[str, Any]], object]


def _set(path: str, value: object) -> Edit:
    """An edit that sets the key at a dotted `path` (e.g. "head.outputs") to `value`."""
    *parents, key = path.split(".")

    def edit(data: dict[str, Any]) -> None:
        for parent in parents:
            data = data[parent]
        data[key] = value

    return edit


MALFORMED: list[tuple[dict[str, Any], Edit, str]] = [
    (WINDOWED, _set("schema_version", 2), "schema_version 2; this GAD Stream reads 1"),
    (WINDOWED, lambda d: d.pop("classes"), r"lacks \['classes'\]"),
    (WINDOWED, _set("name", 7), "name must be a string, got 7"),
    (WINDOWED, _set("version", 1), "version must be a string, got 1"),
    (WINDOWED, _set("classes", ["a", 2]), "classes must be a list of at least 2 names"),
    (WINDOWED, _set("background_index", 3), "background_index 3 out of range"),
    (WINDOWED, _set("fps", "4"), "fps must be a number, got '4'"),
    (WINDOWED, _set("fps", -1), "fps must be positive"),
    (WINDOWED, _set("feature_dim", 0), "feature_dim must be a positive integer, got 0"),
    (WINDOWED, _set("window", {"long_frames": 4}), "bad window"),
    (WINDOWED, _set("window", None), "bad window None: a head reads windows"),
    (WINDOWED, _set("head", "head.onnx"), "head must be an object naming its file, or null"),
    (WINDOWED, _set("head.outputs.logits", tensor("batch", 4)), "4 logits for 3 classes"),
    (WINDOWED, _set("head.outputs.logits", {"dtype": "float32"}), "logits shape must be"),
    (WINDOWED, _set("head.inputs", ["features"]), "head inputs must be an object of tensors"),
    (WINDOWED, _set("encoder.kind", "pose-openpose"), "unknown encoder kind 'pose-openpose'"),
    (WINDOWED, _set("encoder.feature_dim", 512), "the encoder gives 512-d features"),
    (WINDOWED, lambda d: d["encoder"].pop("file"), "encoder file must be a string, got None"),
    (WINDOWED, _set("verify.max_abs_diff", "small"), "verify max_abs_diff must be a number"),
    (WINDOWED, _set("files", []), "files must be an object, got list"),
    (
        WINDOWED,
        lambda d: d["files"].update({"head.onnx": {"bytes": 1}}),
        r"files\['head.onnx'\] sha256 must be a string",
    ),
    (WINDOWED, lambda d: d["files"].pop("head.onnx"), r"\['head.onnx'\] not listed"),
    (WINDOWED, lambda d: d["files"].update({"../x": DIGEST}), "'../x' must be a plain name"),
    (WINDOWED, _set("step", STREAMING["step"]), "a head or a step, not both"),
    (STREAMING, _set("step.layers", 0), "step layers must be a positive integer, got 0"),
    (STREAMING, _set("step.window", True), "step window must be a positive integer, got True"),
    (STREAMING, _set("step.prefill", {"frames": 8}), "step prefill file must be a string"),
    (STREAMING, _set("step.inputs.features", tensor("batch", 8)), "not 16-d"),
    (STREAMING, _set("step", None), "head is null and there is no clip or step model"),
    (CLIP_ONLY, _set("clip.max_frames", 2.5), "clip max_frames must be a positive integer"),
    (CLIP_ONLY, _set("clip.steps", ["one"]), "steps must be a list of at least 2 unique names"),
    (CLIP_ONLY, _set("clip", "clip.onnx"), "clip must be an object or null, got str"),
]


@pytest.mark.parametrize(
    ("base", "edit", "message"), MALFORMED, ids=[message for *_, message in MALFORMED]
)
def test_a_malformed_manifest_is_refused_saying_where(
    base: dict[str, Any], edit: Edit, message: str
) -> None:
    data = copy.deepcopy(base)
    edit(data)
    with pytest.raises(PackageError, match=message) as refused:
        Manifest.from_json(data, source="models/demo/1/manifest.json")
    assert str(refused.value).startswith("models/demo/1/manifest.json")


def test_only_a_json_object_is_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="must hold a JSON object"):
        Manifest.from_json([WINDOWED])
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(PackageError, match="is not valid JSON"):
        read_package(tmp_path)
