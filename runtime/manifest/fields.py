"""The pieces every section is read from: JSON values with their types (each reader raises
PackageError naming `what`), a graph's tensors (TensorSpec), a window, and a file's digest
in "files" (FileDigest, sha256)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from runtime.manifest.schema import PackageError
from runtime.windowing import WindowSpec


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


@runtime_checkable
class _Written(Protocol):
    """A typed part of the manifest (a section, a tensor, a file's digest, Verify)."""

    def to_json(self) -> Any: ...


def _json(value: object) -> Any:
    """A field's value as the manifest writes it: a typed part's to_json(), a window as
    its object, a tuple (names) as a list, a mapping with each value written so; a JSON
    value as it is."""
    if isinstance(value, _Written):
        return value.to_json()
    if isinstance(value, WindowSpec):
        return _window_json(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return {key: _json(item) for key, item in value.items()}
    return value


def _emit_fields(
    part: object, fields: Iterable[str], always: Iterable[str], extra: Mapping[str, Any]
) -> dict[str, Any]:
    """`part`'s `fields` as a JSON object, in that order (_emit of each one's _json)."""
    return _emit([(key, _json(getattr(part, key))) for key in fields], always, extra)


# --- tensors, windows, files -----------------------------------------------------------------


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
