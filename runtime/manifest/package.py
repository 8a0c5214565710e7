"""A model package on disk: its folder and checked manifest (ModelPackage), found
(resolve_package_dir) and read with every listed file checked (read_package)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.manifest.document import Manifest
from runtime.manifest.encoder import EncoderSection
from runtime.manifest.fields import sha256
from runtime.manifest.schema import MANIFEST_FILE, PackageError
from runtime.manifest.sections import ClipSection, StepSection
from runtime.windowing import WindowSpec


@dataclass(frozen=True)
class ModelPackage:
    """A package folder and its checked manifest (`info`, typed)."""

    folder: Path
    info: Manifest

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
    def temperature(self) -> float:
        """The per-frame probabilities' temperature (`info.calibration`; 1 without one):
        softmax(logits / temperature), runtime/calibration.py."""
        return self.info.temperature

    @property
    def has_head(self) -> bool:
        """False for a clip-only package (whole clips, no per-frame labels or streams)."""
        return self.info.head is not None

    @property
    def step(self) -> StepSection | None:
        """A streaming package's step graph (runtime/stepping.py): `info.step`."""
        return self.info.step

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
    def window_json(self) -> dict[str, int] | None:
        """The window as manifest.json writes it, or None (streaming, clip-only)."""
        return self.info.window_json

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
    def encoder(self) -> EncoderSection | None:
        """The frame encoder (what runtime/encoders.py opens): `info.encoder`."""
        return self.info.encoder

    @property
    def encoder_name(self) -> str | None:
        return None if self.info.encoder is None else self.info.encoder.name

    @property
    def encoder_path(self) -> Path | None:
        return None if self.info.encoder is None else self.folder / self.info.encoder.file

    @property
    def clip(self) -> ClipSection | None:
        """The optional whole-clip model (step, task and next step): `info.clip`."""
        return self.info.clip

    @property
    def clip_path(self) -> Path | None:
        return None if self.info.clip is None else self.folder / self.info.clip.file


def resolve_package_dir(path: Path) -> Path:
    """A version folder (holding manifest.json), or a model folder whose newest version
    (numeric order where versions are numbers) is taken."""
    path = Path(path)
    if (path / MANIFEST_FILE).is_file():
        return path
    if not path.is_dir():
        raise PackageError(f"model package {path} does not exist")
    versions = version_folders(path)
    if not versions:
        raise PackageError(
            f"{path} holds no {MANIFEST_FILE} and no version folders with one: "
            "expected a folder written by `gad export`"
        )
    return versions[-1]


def version_folders(model: Path) -> list[Path]:
    """The version folders (each holding a manifest) of a model folder, oldest first."""
    found = [p for p in Path(model).iterdir() if (p / MANIFEST_FILE).is_file()]
    return sorted(found, key=version_key)


def version_key(folder: Path) -> tuple[bool, int, str]:
    """How version folders order: numbers numerically, after names that are not."""
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
