"""The model package's manifest: names, schema and checks shared by the exporter and the
service. Torch-free (the service imports it).

`read_package(folder)` is the one gate a package passes before anything runs it: the schema
version, the required fields, every listed file present with its sha256, and the shapes
that must agree (classes vs logits, feature size vs encoder output, and for an optional
clip model: steps and tasks vs its outputs, its feature size vs the head's).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.errors import CheckpointError
from runtime.windowing import WindowSpec

SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"
HEAD_FILE = "head.onnx"
ENCODER_FILE = "encoder.onnx"
# Frame encoder kinds (manifest["encoder"]["kind"]; absent = "image", encoder.onnx on
# preprocessed pixels). "pose-blazepose": runtime/pose/, its two graphs in file + files.
IMAGE_KIND, POSE_KIND = "image", "pose-blazepose"
ENCODER_KINDS = (IMAGE_KIND, POSE_KIND)
CLIP_FILE = "clip.onnx"
STEP_FILE = "step.onnx"  # a streaming-attention package's per-frame step (no head.onnx)
PREFILL_FILE = "prefill.onnx"  # its N-steps-in-one-pass graph (replays, clips); optional
# clip.onnx's outputs, in the order ClipEngine returns them, and the names each one scores.
CLIP_OUTPUTS = {"step_logits": "steps", "task_logits": "tasks", "next_logits": "steps"}
REQUIRED = (
    "schema_version",
    "name",
    "version",
    "kind",
    "classes",
    "background_index",
    "fps",
    "feature_dim",
    "window",
    "head",
    "files",
)


class PackageError(CheckpointError):
    """A model package that is missing, tampered with, or of another schema."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digest(path: Path) -> dict[str, Any]:
    return {"sha256": sha256(path), "bytes": path.stat().st_size}


@dataclass(frozen=True)
class ModelPackage:
    folder: Path
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.manifest["classes"])

    @property
    def background_index(self) -> int | None:
        index = self.manifest["background_index"]
        return None if index is None else int(index)

    @property
    def fps(self) -> float:
        return float(self.manifest["fps"])

    @property
    def feature_dim(self) -> int:
        return int(self.manifest["feature_dim"])

    @property
    def has_head(self) -> bool:
        """False for a clip-only package (whole clips, no per-frame labels or streams)."""
        return self.manifest["head"] is not None

    @property
    def step(self) -> dict[str, Any] | None:
        """A streaming package's step graph (runtime/stepping.py): manifest["step"]."""
        return self.manifest.get("step")

    @property
    def is_streaming(self) -> bool:
        return self.step is not None

    @property
    def ring_shape(self) -> tuple[int, int, int, int, int]:
        """One stream's K/V rings: [layers, 2, kv heads, window - 1, head dim]."""
        step = self.step
        if step is None:
            raise PackageError(f"{self.folder} is not a streaming package: it has no K/V rings")
        window = int(step["window"])
        return (int(step["layers"]), 2, int(step["kv_heads"]), window - 1, int(step["head_dim"]))

    @property
    def window(self) -> WindowSpec:
        w = self.manifest["window"]
        if w is None:
            kind = "a streaming" if self.is_streaming else "a clip-only"
            raise PackageError(f"{self.folder} is {kind} package: it has no window")
        return WindowSpec(int(w["long_frames"]), int(w["short_frames"]), int(w["long_stride"]))

    @property
    def window_text(self) -> str:
        """What a frame's label reads, for logs and reports: "window 32+8" (whole-window
        head), "streaming window 40 (step.onnx)", or "no window (clip-only)"."""
        if self.is_streaming:
            return f"streaming window {self.ring_shape[3] + 1} (step.onnx)"
        if not self.has_head:
            return "no window (clip-only)"
        return f"window {self.window.long_frames}+{self.window.short_frames}"

    @property
    def head_path(self) -> Path:
        if not self.has_head:
            raise PackageError(f"{self.folder} is a clip-only package: it has no head.onnx")
        return self.folder / str(self.manifest["head"]["file"])

    @property
    def encoder(self) -> dict[str, Any] | None:
        return self.manifest.get("encoder")

    @property
    def encoder_path(self) -> Path | None:
        return None if self.encoder is None else self.folder / self.encoder["file"]

    @property
    def clip(self) -> dict[str, Any] | None:
        """The optional whole-clip model (step, task and next step): manifest["clip"]."""
        return self.manifest.get("clip")

    @property
    def clip_path(self) -> Path | None:
        return None if self.clip is None else self.folder / self.clip["file"]


def encoder_kind(description: dict[str, Any]) -> str:
    """An encoder description's kind: "image" unless it names another (ENCODER_KINDS)."""
    return str(description.get("kind", IMAGE_KIND))


def resolve_package_dir(path: Path) -> Path:
    """A version folder (holding manifest.json), or a model folder whose newest version
    (numeric order where versions are numbers) is taken."""
    path = Path(path)
    if (path / MANIFEST_FILE).is_file():
        return path
    if not path.is_dir():
        raise PackageError(f"model package {path} does not exist")
    versions = [p for p in path.iterdir() if (p / MANIFEST_FILE).is_file()]
    if not versions:
        raise PackageError(
            f"{path} holds no {MANIFEST_FILE} and no version folders with one: "
            "expected a folder written by `gad export`"
        )
    return max(versions, key=_version_key)


def _version_key(folder: Path) -> tuple[bool, int, str]:
    numeric = folder.name.isdigit()
    return numeric, int(folder.name) if numeric else 0, folder.name


def read_package(path: Path, *, check_hashes: bool = True) -> ModelPackage:
    folder = resolve_package_dir(path)
    manifest_path = folder / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise PackageError(f"{manifest_path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise PackageError(f"{manifest_path} must hold a JSON object")
    schema = manifest.get("schema_version")
    if schema != SCHEMA_VERSION:
        raise PackageError(
            f"{manifest_path} has schema_version {schema!r}; this GAD Stream reads "
            f"{SCHEMA_VERSION}: re-export the checkpoint with this version's `gad export`"
        )
    missing = [key for key in REQUIRED if key not in manifest]
    if missing:
        raise PackageError(f"{manifest_path} lacks {missing}")
    package = ModelPackage(folder, manifest)
    _check_consistency(package, manifest_path)
    _check_files(package, check_hashes=check_hashes)
    return package


def _check_consistency(package: ModelPackage, manifest_path: Path) -> None:
    manifest = package.manifest
    classes = manifest["classes"]
    if not isinstance(classes, list) or len(classes) < 2:
        raise PackageError(f"{manifest_path}: classes must be a list of at least 2 names")
    background = manifest["background_index"]
    if background is not None and not 0 <= background < len(classes):
        raise PackageError(f"{manifest_path}: background_index {background} out of range")
    if float(manifest["fps"]) <= 0:
        raise PackageError(f"{manifest_path}: fps must be positive")
    if package.has_head:
        _check_head(package, manifest_path)
        if package.is_streaming:
            raise PackageError(f"{manifest_path}: a package has a head or a step, not both")
    elif package.is_streaming:
        _check_step(package, manifest_path)
    elif package.clip is None:
        raise PackageError(f"{manifest_path}: head is null and there is no clip or step model")
    encoder = manifest.get("encoder")
    if encoder is not None and encoder_kind(encoder) not in ENCODER_KINDS:
        raise PackageError(
            f"{manifest_path}: unknown encoder kind {encoder_kind(encoder)!r}; this GAD Stream "
            f"runs {list(ENCODER_KINDS)}"
        )
    if encoder is not None and int(encoder.get("feature_dim", -1)) != package.feature_dim:
        raise PackageError(
            f"{manifest_path}: the encoder gives {encoder.get('feature_dim')}-d features, "
            f"the head reads {package.feature_dim}-d"
        )
    _check_clip(package, manifest_path)


def _check_head(package: ModelPackage, manifest_path: Path) -> None:
    manifest, classes = package.manifest, package.manifest["classes"]
    head = manifest["head"]
    if not isinstance(head, dict) or not isinstance(head.get("file"), str):
        raise PackageError(f"{manifest_path}: head must be an object naming its file, or null")
    logits = head.get("outputs", {}).get("logits", {}).get("shape", [None, None])
    if logits[-1] != len(classes):
        raise PackageError(
            f"{manifest_path}: head outputs {logits[-1]} logits for {len(classes)} classes"
        )
    try:
        package.window  # noqa: B018 - validates the lengths
    except (KeyError, TypeError, ValueError) as exc:
        raise PackageError(f"{manifest_path}: bad window {manifest['window']}: {exc}") from exc


def _check_step(package: ModelPackage, manifest_path: Path) -> None:
    """A streaming package's step: its ring dimensions, its logits and features sizes."""
    step = package.step
    where = f"{manifest_path}: step"
    if not isinstance(step, dict) or not isinstance(step.get("file"), str):
        raise PackageError(f"{where} must be an object naming its file")
    for key in ("window", "layers", "kv_heads", "head_dim"):
        value = step.get(key)
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or value < (2 if key == "window" else 1)
        ):
            raise PackageError(f"{where} {key} must be a positive integer, got {value!r}")
    logits = _shape(step.get("outputs"), "logits")
    if logits is None or logits[-1] != len(package.classes):
        raise PackageError(
            f"{where} outputs {logits and logits[-1]} logits for {len(package.classes)} classes"
        )
    features = _shape(step.get("inputs"), "features")
    if features is None or features[-1] != package.feature_dim:
        raise PackageError(f"{where} reads features {features}, not {package.feature_dim}-d")


def _check_clip(package: ModelPackage, manifest_path: Path) -> None:
    """The clip model, when there is one: it reads the head's feature rows (same D) and
    scores `steps` (step_logits, next_logits) and `tasks` (task_logits)."""
    clip = package.clip
    if clip is None:
        return
    where = f"{manifest_path}: clip"
    if not isinstance(clip, dict):
        raise PackageError(f"{where} must be an object or null, got {type(clip).__name__}")
    if not isinstance(clip.get("file"), str) or not clip["file"]:
        raise PackageError(f"{where} needs a 'file' (e.g. {CLIP_FILE!r})")
    for key in ("steps", "tasks"):
        names = clip.get(key)
        if (
            not isinstance(names, list)
            or len(names) < 2
            or not all(isinstance(name, str) for name in names)
            or len(set(names)) != len(names)
        ):
            raise PackageError(f"{where} {key} must be a list of at least 2 unique names")
    max_frames = clip.get("max_frames")
    if not isinstance(max_frames, int) or isinstance(max_frames, bool) or max_frames <= 0:
        raise PackageError(f"{where} max_frames must be a positive integer, got {max_frames!r}")
    outputs = clip.get("outputs")
    for output, key in CLIP_OUTPUTS.items():
        shape = _shape(outputs, output)
        if shape is None or shape[-1] != len(clip[key]):
            raise PackageError(
                f"{where} outputs {output} of shape {shape} for {len(clip[key])} {key}: "
                f"expected [batch, {len(clip[key])}]"
            )
    features = _shape(clip.get("inputs"), "features")
    if features is None or len(features) != 3 or features[-1] != package.feature_dim:
        raise PackageError(
            f"{where} reads features of shape {features}, the head reads "
            f"{package.feature_dim}-d rows: expected [batch, time, {package.feature_dim}]"
        )


def _shape(section: Any, name: str) -> list[Any] | None:
    """section[name]["shape"] when it is a non-empty list, else None."""
    entry = section.get(name) if isinstance(section, dict) else None
    shape = entry.get("shape") if isinstance(entry, dict) else None
    return shape if isinstance(shape, list) and shape else None


def _check_files(package: ModelPackage, *, check_hashes: bool) -> None:
    files: dict[str, Any] = package.manifest["files"]
    needed = set()
    prefill = (package.step or {}).get("prefill")
    sections = (package.manifest["head"], package.encoder, package.clip, package.step, prefill)
    for section in sections:
        if section is not None:  # each graph: its file, plus external data files if any
            needed.update([section["file"], *section.get("files", [])])
    unlisted = needed - set(files)
    if unlisted:
        raise PackageError(f"{package.folder}: {sorted(unlisted)} not listed in the manifest")
    for file_name, expected in files.items():
        path = package.folder / file_name
        if Path(file_name).name != file_name:
            raise PackageError(f"{package.folder}: file name {file_name!r} must be a plain name")
        if not path.is_file():
            raise PackageError(f"{path} is missing (listed in {MANIFEST_FILE})")
        size = path.stat().st_size
        if size != expected.get("bytes"):
            raise PackageError(
                f"{path} has {size} bytes, the manifest says {expected.get('bytes')}: "
                "the file was changed or truncated after export"
            )
        if check_hashes and sha256(path) != expected.get("sha256"):
            raise PackageError(
                f"{path} does not match its sha256 in {MANIFEST_FILE}: the file was "
                "changed after export; re-export or restore it"
            )
