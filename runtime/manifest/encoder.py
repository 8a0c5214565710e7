"""The manifest's "encoder": the frame encoder a package accepts images through
(EncoderSection), of a kind in ENCODER_KINDS."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from runtime.manifest.fields import (
    _emit_fields,
    _extra,
    _graph_files,
    _int,
    _object,
    _optional_names,
    _optional_str,
    _str,
)
from runtime.manifest.schema import ENCODER_KINDS, IMAGE_KIND, PackageError


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
        out = _emit_fields(self, self.FIELDS, ("verify",), self.extra)
        if self.kind == IMAGE_KIND:
            del out["kind"]  # an image encoder's description names no kind
        return out

    @property
    def graph_files(self) -> tuple[str, ...]:
        return _graph_files(self.file, self.files)


def encoder_kind(description: Mapping[str, Any]) -> str:
    """An encoder description's kind: "image" unless it names another (ENCODER_KINDS)."""
    return str(description.get("kind", IMAGE_KIND))
