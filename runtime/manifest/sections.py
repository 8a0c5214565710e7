"""The graph sections of a manifest: head.onnx (HeadSection), step.onnx and its
prefill.onnx (StepSection, PrefillSection), clip.onnx (ClipSection), and how `gad export`
checked a graph (Verify)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from runtime.manifest.fields import (
    Tensors,
    _emit_fields,
    _extra,
    _graph_files,
    _int,
    _number,
    _object,
    _optional_int,
    _optional_names,
    _optional_object,
    _optional_str,
    _str,
    _tensors,
)
from runtime.manifest.schema import CLIP_FILE, PackageError


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
        return _emit_fields(self, self.FIELDS, ("max_abs_diff",), self.extra)

    @property
    def probe_text(self) -> str:
        """What it was checked on: "3 windows" or "35 steps of 2 streams"."""
        if self.windows is not None:
            return f"{self.windows} windows"
        return f"{self.frames} steps of {self.streams} streams"


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
        return _emit_fields(self, self.FIELDS, (), self.extra)

    @property
    def graph_files(self) -> tuple[str, ...]:
        return _graph_files(self.file, self.files)


@dataclass(frozen=True)
class PrefillSection:
    """prefill.onnx: a fixed chunk of `frames` steps of one stream in one pass."""

    file: str
    files: tuple[str, ...] | None = None
    frames: int | None = None

    FIELDS: ClassVar[tuple[str, ...]] = ("file", "files", "frames")  # no others kept

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
        return _emit_fields(self, self.FIELDS, (), {})

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
        return _emit_fields(self, self.FIELDS, (), self.extra)

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
        return _emit_fields(self, self.FIELDS, self.ALWAYS, self.extra)

    @property
    def graph_files(self) -> tuple[str, ...]:
        return _graph_files(self.file, self.files)
