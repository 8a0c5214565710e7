"""The model package's manifest: ONE typed contract shared by the exporter (which builds a
`Manifest` and writes `to_json()`) and the service (which reads `Manifest.from_json`).
Torch-free (the service imports it).

`Manifest.from_json(dict)` is the one gate a manifest passes: the schema version, the
required fields and their types, and the shapes that must agree (classes vs logits,
feature size vs encoder output, a head's window, a streaming step's rings, an optional
clip model's steps and tasks vs its outputs, every graph's file listed in `files`).
`read_package(folder)` adds what needs the folder: every listed file present, of its size
and sha256. `to_json()` writes the format exactly as it is read (schema_version 1):
`Manifest.from_json(d).to_json() == d` for every manifest `gad export` writes.

A key the format may leave out is None here (and left out again on writing) unless it is
one the exporter always writes, null or not (e.g. "metrics", "verify"); a key this
version does not know is kept as it is in the object's `extra`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from runtime.errors import CheckpointError
from runtime.windowing import WindowSpec

SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"
HEAD_FILE = "head.onnx"
ENCODER_FILE = "encoder.onnx"
# Frame encoder kinds (EncoderSection.kind; absent in the JSON = "image", encoder.onnx on
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
    """A file's entry in the manifest's "files", as JSON (FileDigest.of for the typed one)."""
    return FileDigest.of(path).to_json()


# --- reading JSON values with their types ---------------------------------------------------


def _object(value: object, what: str, expected: str = "an object") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PackageError(f"{what} must be {expected}, got {type(value).__name__}")
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(value: object, what: str, *, minimum: int | None = None) -> int:
    low = float("-inf") if minimum is None else minimum
    if isinstance(value, int) and not isinstance(value, bool) and value >= low:
        return value
    kind = "an integer" if minimum is None else "a positive integer"
    raise PackageError(f"{what} must be {kind}, got {value!r}")


def _optional_int(value: object, what: str) -> int | None:
    return None if value is None else _int(value, what)


def _number(value: object, what: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise PackageError(f"{what} must be a number, got {value!r}")
    return float(value)


def _str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise PackageError(f"{what} must be a string, got {value!r}")
    return value


def _optional_str(value: object, what: str) -> str | None:
    return None if value is None else _str(value, what)


def _names(value: object, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise PackageError(f"{what} must be a list of names, got {value!r}")
    return tuple(value)


def _optional_names(value: object, what: str) -> tuple[str, ...] | None:
    return None if value is None else _names(value, what)


def _optional_object(value: object, what: str) -> dict[str, Any] | None:
    return None if value is None else _object(value, what, "an object or null")


def _extra(data: Mapping[str, Any], known: Iterable[str]) -> dict[str, Any]:
    """The keys of `data` this version does not model, kept as they are."""
    names = set(known)
    return {key: value for key, value in data.items() if key not in names}


def _emit(
    pairs: Iterable[tuple[str, Any]], always: Iterable[str], extra: Mapping[str, Any]
) -> dict[str, Any]:
    """A JSON object of `pairs`, leaving out None values except the keys in `always`."""
    keep = set(always)
    out = {key: value for key, value in pairs if value is not None or key in keep}
    return out | dict(extra)


# --- the sections -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a graph: its shape (named dimensions as strings, e.g.
    ["batch", "time", 64]) and dtype."""

    shape: tuple[int | str, ...]
    dtype: str | None = None

    @classmethod
    def from_json(cls, data: object, what: str) -> TensorSpec:
        entry = _object(data, what, 'an object {"shape": [...], "dtype": ...}')
        shape = entry.get("shape")
        if (
            not isinstance(shape, list)
            or not shape
            or not all(isinstance(dim, str) or _is_int(dim) for dim in shape)
        ):
            raise PackageError(f"{what} shape must be a non-empty list of sizes, got {shape!r}")
        return cls(tuple(shape), _optional_str(entry.get("dtype"), f"{what} dtype"))

    def to_json(self) -> dict[str, Any]:
        return _emit([("shape", list(self.shape)), ("dtype", self.dtype)], (), {})


Tensors = Mapping[str, TensorSpec]


def _tensors(data: object, what: str) -> dict[str, TensorSpec] | None:
    if data is None:
        return None
    entries = _object(data, what, "an object of tensors")
    return {name: TensorSpec.from_json(entry, f"{what} {name}") for name, entry in entries.items()}


def _tensors_json(tensors: Tensors | None) -> dict[str, Any] | None:
    return None if tensors is None else {name: t.to_json() for name, t in tensors.items()}


def _shape(tensors: Tensors | None, name: str) -> list[int | str] | None:
    """The shape of tensor `name`, as the manifest writes it, or None."""
    spec = None if tensors is None else tensors.get(name)
    return None if spec is None else list(spec.shape)


def _graph_files(file: str, files: tuple[str, ...] | None) -> tuple[str, ...]:
    """A graph's file and its other files (external data, a second graph), once each."""
    return tuple(dict.fromkeys((file, *(files or ()))))


def _window(data: object, what: str) -> WindowSpec | None:
    if data is None:
        return None
    keys = ("long_frames", "short_frames", "long_stride")
    if not isinstance(data, dict) or not all(_is_int(data.get(key)) for key in keys):
        raise PackageError(f"{what}: bad window {data}: needs integer {', '.join(keys)}")
    try:
        return WindowSpec(data["long_frames"], data["short_frames"], data["long_stride"])
    except ValueError as exc:
        raise PackageError(f"{what}: bad window {data}: {exc}") from exc


def _window_json(window: WindowSpec | None) -> dict[str, int] | None:
    if window is None:
        return None
    return {
        "long_frames": window.long_frames,
        "short_frames": window.short_frames,
        "long_stride": window.long_stride,
    }


@dataclass(frozen=True)
class FileDigest:
    """A file's entry in "files": what read_package checks it against."""

    sha256: str
    bytes: int

    @classmethod
    def of(cls, path: Path) -> FileDigest:
        return cls(sha256(path), path.stat().st_size)

    @classmethod
    def from_json(cls, data: object, what: str) -> FileDigest:
        entry = _object(data, what, 'an object {"sha256": ..., "bytes": ...}')
        return cls(
            _str(entry.get("sha256"), f"{what} sha256"),
            _int(entry.get("bytes"), f"{what} bytes"),
        )

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "bytes": self.bytes}


@dataclass(frozen=True)
class Verify:
    """How `gad export` checked a graph against PyTorch (`max_abs_diff` within
    `tolerance`): head.onnx and clip.onnx on `windows` windows (or clips), step.onnx on
    `frames` steps of `streams` streams (and prefill.onnx too when `prefill`)."""

    max_abs_diff: float
    tolerance: float
    windows: int | None = None
    streams: int | None = None
    frames: int | None = None
    argmax_agreement: float | None = None
    provider: str | None = None
    prefill: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    FIELDS: ClassVar[tuple[str, ...]] = (
        "max_abs_diff",
        "tolerance",
        "windows",
        "streams",
        "frames",
        "argmax_agreement",
        "provider",
        "prefill",
    )

    @classmethod
    def from_json(cls, data: object, what: str) -> Verify | None:
        if data is None:
            return None
        v = _object(data, what, "an object or null")
        agreement, prefill = v.get("argmax_agreement"), v.get("prefill")
        if prefill is not None and not isinstance(prefill, bool):
            raise PackageError(f"{what} prefill must be true or false, got {prefill!r}")
        return cls(
            max_abs_diff=_number(v.get("max_abs_diff"), f"{what} max_abs_diff"),
            tolerance=_number(v.get("tolerance"), f"{what} tolerance"),
            windows=_optional_int(v.get("windows"), f"{what} windows"),
            streams=_optional_int(v.get("streams"), f"{what} streams"),
            frames=_optional_int(v.get("frames"), f"{what} frames"),
            argmax_agreement=None
            if agreement is None
            else _number(agreement, f"{what} argmax_agreement"),
            provider=_optional_str(v.get("provider"), f"{what} provider"),
            prefill=prefill,
            extra=_extra(v, cls.FIELDS),
        )

    def to_json(self) -> dict[str, Any]:
        return _emit(
            [(key, getattr(self, key)) for key in self.FIELDS], ("max_abs_diff",), self.extra
        )

    @property
    def probe_text(self) -> str:
        """What it was checked on: "3 windows" or "35 steps of 2 streams"."""
        if self.windows is not None:
            return f"{self.windows} windows"
        return f"{self.frames} steps of {self.streams} streams"


def _verify_json(verify: Verify | None) -> dict[str, Any] | None:
    return None if verify is None else verify.to_json()


@dataclass(frozen=True)
class HeadSection:
    """head.onnx: features [batch, time, D] + mask [batch, time] → logits [batch, classes]."""

    file: str
    files: tuple[str, ...] | None = None  # the graph's files (its external data, if any)
    opset: int | None = None
    inputs: Tensors | None = None
    outputs: Tensors | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    FIELDS: ClassVar[tuple[str, ...]] = ("file", "files", "opset", "inputs", "outputs")

    @classmethod
    def from_json(cls, data: object, where: str) -> HeadSection | None:
        if data is None:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("file"), str):
            raise PackageError(f"{where}: head must be an object naming its file, or null")
        what = f"{where}: head"
        return cls(
            file=data["file"],
            files=_optional_names(data.get("files"), f"{what} files"),
            opset=_optional_int(data.get("opset"), f"{what} opset"),
            inputs=_tensors(data.get("inputs"), f"{what} inputs"),
            outputs=_tensors(data.get("outputs"), f"{what} outputs"),
            extra=_extra(data, cls.FIELDS),
        )

    def to_json(self) -> dict[str, Any]:
        pairs = [
            ("file", self.file),
            ("files", None if self.files is None else list(self.files)),
            ("opset", self.opset),
            ("inputs", _tensors_json(self.inputs)),
            ("outputs", _tensors_json(self.outputs)),
        ]
        return _emit(pairs, (), self.extra)

    @property
    def graph_files(self) -> tuple[str, ...]:
        return _graph_files(self.file, self.files)


@dataclass(frozen=True)
class PrefillSection:
    """prefill.onnx: a fixed chunk of `frames` steps of one stream in one pass."""

    file: str
    files: tuple[str, ...] | None = None
    frames: int | None = None

    @classmethod
    def from_json(cls, data: object, what: str) -> PrefillSection | None:
        if data is None:
            return None
        p = _object(data, what, "an object or null")
        return cls(
            file=_str(p.get("file"), f"{what} file"),
            files=_optional_names(p.get("files"), f"{what} files"),
            frames=_optional_int(p.get("frames"), f"{what} frames"),
        )

    def to_json(self) -> dict[str, Any]:
        files = None if self.files is None else list(self.files)
        return _emit([("file", self.file), ("files", files), ("frames", self.frames)], (), {})

    @property
    def graph_files(self) -> tuple[str, ...]:
        return _graph_files(self.file, self.files)


@dataclass(frozen=True)
class StepSection:
    """step.onnx of a streaming package (runtime/stepping.py): its K/V rings' dimensions,
    and `reach`, the frames a label depends on (layers x (window - 1) + 1)."""

    file: str
    window: int
    layers: int
    kv_heads: int
    head_dim: int
    files: tuple[str, ...] | None = None
    opset: int | None = None
    reach: int | None = None
    inputs: Tensors | None = None
    outputs: Tensors | None = None
    prefill: PrefillSection | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    FIELDS: ClassVar[tuple[str, ...]] = (
        "file",
        "files",
        "opset",
        "window",
        "layers",
        "kv_heads",
        "head_dim",
        "reach",
        "inputs",
        "outputs",
        "prefill",
    )

    @classmethod
    def from_json(cls, data: object, where: str) -> StepSection | None:
        if data is None:
            return None
        what = f"{where}: step"
        if not isinstance(data, dict) or not isinstance(data.get("file"), str):
            raise PackageError(f"{what} must be an object naming its file")
        sizes = {
            key: _int(data.get(key), f"{what} {key}", minimum=2 if key == "window" else 1)
            for key in ("window", "layers", "kv_heads", "head_dim")
        }
        return cls(
            file=data["file"],
            files=_optional_names(data.get("files"), f"{what} files"),
            opset=_optional_int(data.get("opset"), f"{what} opset"),
            reach=_optional_int(data.get("reach"), f"{what} reach"),
            inputs=_tensors(data.get("inputs"), f"{what} inputs"),
            outputs=_tensors(data.get("outputs"), f"{what} outputs"),
            prefill=PrefillSection.from_json(data.get("prefill"), f"{what} prefill"),
            extra=_extra(data, cls.FIELDS),
            **sizes,
        )

    def to_json(self) -> dict[str, Any]:
        pairs = [
            ("file", self.file),
            ("files", None if self.files is None else list(self.files)),
            ("opset", self.opset),
            ("window", self.window),
            ("layers", self.layers),
            ("kv_heads", self.kv_heads),
            ("head_dim", self.head_dim),
            ("reach", self.reach),
            ("inputs", _tensors_json(self.inputs)),
            ("outputs", _tensors_json(self.outputs)),
            ("prefill", None if self.prefill is None else self.prefill.to_json()),
        ]
        return _emit(pairs, (), self.extra)

    @property
    def ring_shape(self) -> tuple[int, int, int, int, int]:
        """One stream's K/V rings: [layers, 2, kv heads, window - 1, head dim]."""
        return (self.layers, 2, self.kv_heads, self.window - 1, self.head_dim)

    @property
    def graph_files(self) -> tuple[str, ...]:
        return _graph_files(self.file, self.files)


@dataclass(frozen=True)
class ClipSection:
    """clip.onnx: whole clips [batch, time, D] → step, task and next-step logits (the names
    in `steps` and `tasks`), clips of at most `max_frames` rows."""

    file: str
    steps: tuple[str, ...]
    tasks: tuple[str, ...]
    max_frames: int
    files: tuple[str, ...] | None = None
    kind: str | None = None
    tokens_per_frame: int | None = None
    frame_tokens: str | None = None
    frame_separator: str | None = None  # written even when null
    questions: tuple[str, ...] | None = None
    inputs: Tensors | None = None
    outputs: Tensors | None = None
    backbone: dict[str, Any] | None = None
    training: dict[str, Any] | None = None  # written even when null
    metrics: dict[str, Any] | None = None  # written even when null
    verify: Verify | None = None  # written even when null
    extra: dict[str, Any] = field(default_factory=dict)

    FIELDS: ClassVar[tuple[str, ...]] = (
        "file",
        "files",
        "kind",
        "steps",
        "tasks",
        "max_frames",
        "tokens_per_frame",
        "frame_tokens",
        "frame_separator",
        "questions",
        "inputs",
        "outputs",
        "backbone",
        "training",
        "metrics",
        "verify",
    )
    ALWAYS: ClassVar[tuple[str, ...]] = ("frame_separator", "training", "metrics", "verify")

    @classmethod
    def from_json(cls, data: object, where: str) -> ClipSection | None:
        if data is None:
            return None
        what = f"{where}: clip"
        if not isinstance(data, dict):
            raise PackageError(f"{what} must be an object or null, got {type(data).__name__}")
        if not isinstance(data.get("file"), str) or not data["file"]:
            raise PackageError(f"{what} needs a 'file' (e.g. {CLIP_FILE!r})")
        names = {}
        for key in ("steps", "tasks"):
            value = data.get(key)
            if (
                not isinstance(value, list)
                or len(value) < 2
                or not all(isinstance(name, str) for name in value)
                or len(set(value)) != len(value)
            ):
                raise PackageError(f"{what} {key} must be a list of at least 2 unique names")
            names[key] = tuple(value)
        return cls(
            file=data["file"],
            max_frames=_int(data.get("max_frames"), f"{what} max_frames", minimum=1),
            files=_optional_names(data.get("files"), f"{what} files"),
            kind=_optional_str(data.get("kind"), f"{what} kind"),
            tokens_per_frame=_optional_int(
                data.get("tokens_per_frame"), f"{what} tokens_per_frame"
            ),
            frame_tokens=_optional_str(data.get("frame_tokens"), f"{what} frame_tokens"),
            frame_separator=_optional_str(data.get("frame_separator"), f"{what} frame_separator"),
            questions=_optional_names(data.get("questions"), f"{what} questions"),
            inputs=_tensors(data.get("inputs"), f"{what} inputs"),
            outputs=_tensors(data.get("outputs"), f"{what} outputs"),
            backbone=_optional_object(data.get("backbone"), f"{what} backbone"),
            training=_optional_object(data.get("training"), f"{what} training"),
            metrics=_optional_object(data.get("metrics"), f"{what} metrics"),
            verify=Verify.from_json(data.get("verify"), f"{what} verify"),
            extra=_extra(data, cls.FIELDS),
            **names,
        )

    def to_json(self) -> dict[str, Any]:
        pairs = [
            ("file", self.file),
            ("files", None if self.files is None else list(self.files)),
            ("kind", self.kind),
            ("steps", list(self.steps)),
            ("tasks", list(self.tasks)),
            ("max_frames", self.max_frames),
            ("tokens_per_frame", self.tokens_per_frame),
            ("frame_tokens", self.frame_tokens),
            ("frame_separator", self.frame_separator),
            ("questions", None if self.questions is None else list(self.questions)),
            ("inputs", _tensors_json(self.inputs)),
            ("outputs", _tensors_json(self.outputs)),
            ("backbone", self.backbone),
            ("training", self.training),
            ("metrics", self.metrics),
            ("verify", _verify_json(self.verify)),
        ]
        return _emit(pairs, self.ALWAYS, self.extra)

    @property
    def graph_files(self) -> tuple[str, ...]:
        return _graph_files(self.file, self.files)


@dataclass(frozen=True)
class EncoderSection:
    """The frame encoder a package accepts images through: its description (what the
    encoder's `describe()` gives: spec, name, feature size, preprocessing; a pose encoder
    also its kind and two graphs) and the graph files. `kind` is IMAGE_KIND when the JSON
    has none (an image encoder's description names no kind, and is written without)."""

    spec: str
    name: str
    feature_dim: int
    preprocess: dict[str, Any]
    file: str
    kind: str = IMAGE_KIND
    detector: str | None = None  # a pose encoder's two graphs: detector and landmarks
    landmarks: str | None = None
    files: tuple[str, ...] | None = None
    source: Any = None  # where a converted encoder's weights came from
    verify: Any = None  # the encoder's own export check (written even when null)
    extra: dict[str, Any] = field(default_factory=dict)

    FIELDS: ClassVar[tuple[str, ...]] = (
        "kind",
        "spec",
        "name",
        "feature_dim",
        "preprocess",
        "detector",
        "landmarks",
        "file",
        "files",
        "source",
        "verify",
    )

    @classmethod
    def from_json(cls, data: object, where: str) -> EncoderSection | None:
        if data is None:
            return None
        what = f"{where}: encoder"
        e = _object(data, what, "an object or null")
        kind = _str(e.get("kind", IMAGE_KIND), f"{what} kind")
        if kind not in ENCODER_KINDS:
            raise PackageError(
                f"{where}: unknown encoder kind {kind!r}; this GAD Stream runs "
                f"{list(ENCODER_KINDS)}"
            )
        return cls(
            kind=kind,
            spec=_str(e.get("spec"), f"{what} spec"),
            name=_str(e.get("name"), f"{what} name"),
            feature_dim=_int(e.get("feature_dim"), f"{what} feature_dim", minimum=1),
            preprocess=_object(e.get("preprocess"), f"{what} preprocess"),
            detector=_optional_str(e.get("detector"), f"{what} detector"),
            landmarks=_optional_str(e.get("landmarks"), f"{what} landmarks"),
            file=_str(e.get("file"), f"{what} file"),
            files=_optional_names(e.get("files"), f"{what} files"),
            source=e.get("source"),
            verify=e.get("verify"),
            extra=_extra(e, cls.FIELDS),
        )

    @classmethod
    def describing(
        cls,
        description: Mapping[str, Any],
        *,
        file: str,
        files: Iterable[str] | None = None,
        source: Any = None,
        verify: Any = None,
    ) -> EncoderSection:
        """The section for an encoder's `describe()` (kept whole: keys this version does
        not model go to `extra`) and the graph files written for it."""
        data = dict(description) | {"file": file, "source": source, "verify": verify}
        if files is not None:
            data["files"] = list(files)
        section = cls.from_json(data, "the encoder description")
        assert section is not None
        return section

    def to_json(self) -> dict[str, Any]:
        pairs = [
            ("kind", None if self.kind == IMAGE_KIND else self.kind),
            ("spec", self.spec),
            ("name", self.name),
            ("feature_dim", self.feature_dim),
            ("preprocess", self.preprocess),
            ("detector", self.detector),
            ("landmarks", self.landmarks),
            ("file", self.file),
            ("files", None if self.files is None else list(self.files)),
            ("source", self.source),
            ("verify", self.verify),
        ]
        return _emit(pairs, ("verify",), self.extra)

    @property
    def graph_files(self) -> tuple[str, ...]:
        return _graph_files(self.file, self.files)


# --- the manifest -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """manifest.json: what a model package holds and what the service must know to run it.

    Exactly one of `head` (a windowed model: head.onnx over `window`), `step` (a streaming
    model: step.onnx, `window` None) or, with neither, a clip-only package (`clip`, no
    frames labelled) carries the per-frame model; `clip` may sit beside a head."""

    name: str
    version: str
    kind: str  # the per-frame model's kind: "gad", "discriminative" or "generative"
    classes: tuple[str, ...]
    background_index: int | None
    fps: float
    feature_dim: int
    window: WindowSpec | None
    head: HeadSection | None
    files: Mapping[str, FileDigest]
    schema_version: int = SCHEMA_VERSION
    created: str | None = None
    encoder: EncoderSection | None = None  # written even when null
    backbone: dict[str, Any] | None = None
    parameters: dict[str, Any] | None = None
    training: dict[str, Any] | None = None  # written even when null
    metrics: dict[str, Any] | None = None  # `gad eval`'s metrics.json; written even when null
    verify: Verify | None = None  # written even when null
    step: StepSection | None = None
    attention: str | None = None  # "streaming" beside a step
    clip: ClipSection | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    FIELDS: ClassVar[tuple[str, ...]] = (
        "schema_version",
        "name",
        "version",
        "created",
        "kind",
        "classes",
        "background_index",
        "fps",
        "feature_dim",
        "window",
        "head",
        "encoder",
        "backbone",
        "parameters",
        "training",
        "metrics",
        "verify",
        "step",
        "attention",
        "clip",
        "files",
    )
    ALWAYS: ClassVar[tuple[str, ...]] = (
        *REQUIRED,
        "encoder",
        "training",
        "metrics",
        "verify",
    )

    @classmethod
    def from_json(cls, data: object, *, source: str | Path = MANIFEST_FILE) -> Manifest:
        """The manifest `data` (json.loads of manifest.json), checked; PackageError, naming
        `source` and what is wrong, when it is not one this version runs."""
        where = str(source)
        if not isinstance(data, dict):
            raise PackageError(f"{where} must hold a JSON object")
        schema = data.get("schema_version")
        if schema != SCHEMA_VERSION:
            raise PackageError(
                f"{where} has schema_version {schema!r}; this GAD Stream reads "
                f"{SCHEMA_VERSION}: re-export the checkpoint with this version's `gad export`"
            )
        missing = [key for key in REQUIRED if key not in data]
        if missing:
            raise PackageError(f"{where} lacks {missing}")
        classes = data["classes"]
        if (
            not isinstance(classes, list)
            or len(classes) < 2
            or not all(isinstance(name, str) for name in classes)
        ):
            raise PackageError(f"{where}: classes must be a list of at least 2 names")
        background = data["background_index"]
        if background is not None and not (_is_int(background) and 0 <= background < len(classes)):
            raise PackageError(f"{where}: background_index {background} out of range")
        files = _object(data["files"], f"{where}: files")
        manifest = cls(
            schema_version=schema,
            name=_str(data["name"], f"{where}: name"),
            version=_str(data["version"], f"{where}: version"),
            created=_optional_str(data.get("created"), f"{where}: created"),
            kind=_str(data["kind"], f"{where}: kind"),
            classes=tuple(classes),
            background_index=background,
            fps=_number(data["fps"], f"{where}: fps"),
            feature_dim=_int(data["feature_dim"], f"{where}: feature_dim", minimum=1),
            window=_window(data["window"], where),
            head=HeadSection.from_json(data["head"], where),
            encoder=EncoderSection.from_json(data.get("encoder"), where),
            backbone=_optional_object(data.get("backbone"), f"{where}: backbone"),
            parameters=_optional_object(data.get("parameters"), f"{where}: parameters"),
            training=_optional_object(data.get("training"), f"{where}: training"),
            metrics=_optional_object(data.get("metrics"), f"{where}: metrics"),
            verify=Verify.from_json(data.get("verify"), f"{where}: verify"),
            step=StepSection.from_json(data.get("step"), where),
            attention=_optional_str(data.get("attention"), f"{where}: attention"),
            clip=ClipSection.from_json(data.get("clip"), where),
            files={
                name: FileDigest.from_json(entry, f"{where}: files[{name!r}]")
                for name, entry in files.items()
            },
            extra=_extra(data, cls.FIELDS),
        )
        manifest.check(where)
        return manifest

    def to_json(self) -> dict[str, Any]:
        """The manifest as manifest.json holds it (json.dumps of this is the file)."""
        pairs = [
            ("schema_version", self.schema_version),
            ("name", self.name),
            ("version", self.version),
            ("created", self.created),
            ("kind", self.kind),
            ("classes", list(self.classes)),
            ("background_index", self.background_index),
            ("fps", self.fps),
            ("feature_dim", self.feature_dim),
            ("window", _window_json(self.window)),
            ("head", None if self.head is None else self.head.to_json()),
            ("encoder", None if self.encoder is None else self.encoder.to_json()),
            ("backbone", self.backbone),
            ("parameters", self.parameters),
            ("training", self.training),
            ("metrics", self.metrics),
            ("verify", _verify_json(self.verify)),
            ("step", None if self.step is None else self.step.to_json()),
            ("attention", self.attention),
            ("clip", None if self.clip is None else self.clip.to_json()),
            ("files", {name: digest.to_json() for name, digest in self.files.items()}),
        ]
        return _emit(pairs, self.ALWAYS, self.extra)

    def check(self, where: str = MANIFEST_FILE) -> None:
        """The shapes that must agree across sections; PackageError naming `where`."""
        if self.fps <= 0:
            raise PackageError(f"{where}: fps must be positive")
        if self.head is not None:
            logits = _shape(self.head.outputs, "logits")
            size = None if logits is None else logits[-1]
            if size != len(self.classes):
                raise PackageError(
                    f"{where}: head outputs {size} logits for {len(self.classes)} classes"
                )
            if self.window is None:
                raise PackageError(f"{where}: bad window None: a head reads windows")
            if self.step is not None:
                raise PackageError(f"{where}: a package has a head or a step, not both")
        elif self.step is not None:
            self._check_step(self.step, f"{where}: step")
        elif self.clip is None:
            raise PackageError(f"{where}: head is null and there is no clip or step model")
        if self.encoder is not None and self.encoder.feature_dim != self.feature_dim:
            raise PackageError(
                f"{where}: the encoder gives {self.encoder.feature_dim}-d features, "
                f"the head reads {self.feature_dim}-d"
            )
        if self.clip is not None:
            self._check_clip(self.clip, f"{where}: clip")
        for name in self.files:
            if Path(name).name != name:
                raise PackageError(f"{where}: file name {name!r} must be a plain name")
        unlisted = set(self.graph_files) - set(self.files)
        if unlisted:
            raise PackageError(f"{where}: {sorted(unlisted)} not listed in the manifest")

    def _check_step(self, step: StepSection, where: str) -> None:
        logits = _shape(step.outputs, "logits")
        if logits is None or logits[-1] != len(self.classes):
            raise PackageError(
                f"{where} outputs {logits and logits[-1]} logits for {len(self.classes)} classes"
            )
        features = _shape(step.inputs, "features")
        if features is None or features[-1] != self.feature_dim:
            raise PackageError(f"{where} reads features {features}, not {self.feature_dim}-d")

    def _check_clip(self, clip: ClipSection, where: str) -> None:
        """The clip model reads the head's feature rows (same D) and scores `steps`
        (step_logits, next_logits) and `tasks` (task_logits)."""
        for output, key in CLIP_OUTPUTS.items():
            shape = _shape(clip.outputs, output)
            count = len(getattr(clip, key))
            if shape is None or shape[-1] != count:
                raise PackageError(
                    f"{where} outputs {output} of shape {shape} for {count} {key}: "
                    f"expected [batch, {count}]"
                )
        features = _shape(clip.inputs, "features")
        if features is None or len(features) != 3 or features[-1] != self.feature_dim:
            raise PackageError(
                f"{where} reads features of shape {features}, the head reads "
                f"{self.feature_dim}-d rows: expected [batch, time, {self.feature_dim}]"
            )

    @property
    def graph_files(self) -> tuple[str, ...]:
        """Every file the graphs need (each graph's file and its external data files)."""
        sections = (self.head, self.encoder, self.clip, self.step)
        names = [name for s in sections if s is not None for name in s.graph_files]
        if self.step is not None and self.step.prefill is not None:
            names += self.step.prefill.graph_files
        return tuple(dict.fromkeys(names))


# --- a package on disk ------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelPackage:
    """A package folder and its checked manifest (`info`, typed)."""

    folder: Path
    info: Manifest

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest as JSON, for callers that still look keys up; read `info`."""
        return self.info.to_json()

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def version(self) -> str:
        return self.info.version

    @property
    def kind(self) -> str:
        """The per-frame model's kind: "gad", "discriminative" or "generative"."""
        return self.info.kind

    @property
    def classes(self) -> tuple[str, ...]:
        return self.info.classes

    @property
    def background_index(self) -> int | None:
        return self.info.background_index

    @property
    def fps(self) -> float:
        return self.info.fps

    @property
    def feature_dim(self) -> int:
        return self.info.feature_dim

    @property
    def metrics(self) -> dict[str, Any] | None:
        """`gad eval`'s metrics.json, as exported with the model (None if there was none)."""
        return self.info.metrics

    @property
    def has_head(self) -> bool:
        """False for a clip-only package (whole clips, no per-frame labels or streams)."""
        return self.info.head is not None

    @property
    def step(self) -> dict[str, Any] | None:
        """A streaming package's step graph (runtime/stepping.py), as JSON; typed:
        `info.step`."""
        return None if self.info.step is None else self.info.step.to_json()

    @property
    def is_streaming(self) -> bool:
        return self.info.step is not None

    @property
    def ring_shape(self) -> tuple[int, int, int, int, int]:
        """One stream's K/V rings: [layers, 2, kv heads, window - 1, head dim]."""
        if self.info.step is None:
            raise PackageError(f"{self.folder} is not a streaming package: it has no K/V rings")
        return self.info.step.ring_shape

    @property
    def window(self) -> WindowSpec:
        if self.info.window is None:
            kind = "a streaming" if self.is_streaming else "a clip-only"
            raise PackageError(f"{self.folder} is {kind} package: it has no window")
        return self.info.window

    @property
    def window_text(self) -> str:
        """What a frame's label reads, for logs and reports: "window 32+8" (whole-window
        head), "streaming window 40 (step.onnx)", or "no window (clip-only)"."""
        if self.info.step is not None:
            return f"streaming window {self.info.step.window} (step.onnx)"
        if not self.has_head:
            return "no window (clip-only)"
        return f"window {self.window.long_frames}+{self.window.short_frames}"

    @property
    def head_path(self) -> Path:
        if self.info.head is None:
            raise PackageError(f"{self.folder} is a clip-only package: it has no head.onnx")
        return self.folder / self.info.head.file

    @property
    def encoder(self) -> dict[str, Any] | None:
        """The frame encoder's description as JSON (what runtime/encoders.py opens it
        from); typed: `info.encoder`."""
        return None if self.info.encoder is None else self.info.encoder.to_json()

    @property
    def encoder_name(self) -> str | None:
        return None if self.info.encoder is None else self.info.encoder.name

    @property
    def encoder_path(self) -> Path | None:
        return None if self.info.encoder is None else self.folder / self.info.encoder.file

    @property
    def clip(self) -> dict[str, Any] | None:
        """The optional whole-clip model (step, task and next step), as JSON; typed:
        `info.clip`."""
        return None if self.info.clip is None else self.info.clip.to_json()

    @property
    def clip_path(self) -> Path | None:
        return None if self.info.clip is None else self.folder / self.info.clip.file


def encoder_kind(description: Mapping[str, Any]) -> str:
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
    """The package at `path` (resolve_package_dir), its manifest checked
    (Manifest.from_json) and every listed file present, of its size and sha256."""
    folder = resolve_package_dir(path)
    manifest_path = folder / MANIFEST_FILE
    try:
        data = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise PackageError(f"{manifest_path} is not valid JSON: {exc}") from exc
    package = ModelPackage(folder, Manifest.from_json(data, source=manifest_path))
    _check_files(package, check_hashes=check_hashes)
    return package


def _check_files(package: ModelPackage, *, check_hashes: bool) -> None:
    for file_name, expected in package.info.files.items():
        path = package.folder / file_name
        if not path.is_file():
            raise PackageError(f"{path} is missing (listed in {MANIFEST_FILE})")
        size = path.stat().st_size
        if size != expected.bytes:
            raise PackageError(
                f"{path} has {size} bytes, the manifest says {expected.bytes}: "
                "the file was changed or truncated after export"
            )
        if check_hashes and sha256(path) != expected.sha256:
            raise PackageError(
                f"{path} does not match its sha256 in {MANIFEST_FILE}: the file was "
                "changed after export; re-export or restore it"
            )
