"""manifest.json as one object: Manifest (its sections, read and written), and the checks
that need more than one section (the shapes that must agree, every graph's file listed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from runtime.manifest.calibration import CalibrationSection
from runtime.manifest.encoder import EncoderSection
from runtime.manifest.fields import (
    FileDigest,
    _emit_fields,
    _extra,
    _int,
    _is_int,
    _number,
    _object,
    _optional_object,
    _optional_str,
    _shape,
    _str,
    _window,
    _window_json,
)
from runtime.manifest.schema import (
    CLIP_OUTPUTS,
    KEYS,
    MANIFEST_FILE,
    REQUIRED,
    SCHEMA_VERSION,
    PackageError,
)
from runtime.manifest.sections import ClipSection, HeadSection, StepSection, Verify
from runtime.windowing import WindowSpec


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
    calibration: CalibrationSection | None = None  # absent: temperature 1
    extra: dict[str, Any] = field(default_factory=dict)

    FIELDS: ClassVar[tuple[str, ...]] = tuple(KEYS)
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
            calibration=CalibrationSection.from_json(data.get("calibration"), where),
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
        return _emit_fields(self, self.FIELDS, self.ALWAYS, self.extra)

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
    def temperature(self) -> float:
        """What the per-frame logits are divided by before softmax: 1 without calibration."""
        return 1.0 if self.calibration is None else self.calibration.temperature

    @property
    def window_json(self) -> dict[str, int] | None:
        """The window as manifest.json writes it ({"long_frames", "short_frames",
        "long_stride"}), or None where there is none (streaming, clip-only)."""
        return _window_json(self.window)

    @property
    def graph_files(self) -> tuple[str, ...]:
        """Every file the graphs need (each graph's file and its external data files)."""
        sections = (self.head, self.encoder, self.clip, self.step)
        names = [name for s in sections if s is not None for name in s.graph_files]
        if self.step is not None and self.step.prefill is not None:
            names += self.step.prefill.graph_files
        return tuple(dict.fromkeys(names))
