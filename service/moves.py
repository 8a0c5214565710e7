"""When an open stream may move to another version of its model at a frame boundary: the
rule service/versions.py switches by and service/session.py applies, stream by stream."""

from __future__ import annotations

from runtime.manifest import ModelPackage


def moves_to(old: ModelPackage, new: ModelPackage, *, span: int, new_span: int) -> str | None:
    """Why an open stream of `old` cannot move to `new` at a frame boundary (its stored
    rows would change meaning, or its window its length), or None when it can."""
    if old.feature_dim != new.feature_dim:
        return f"feature size {old.feature_dim} → {new.feature_dim}"
    if old.fps != new.fps:
        return f"fps {old.fps:g} → {new.fps:g}"
    if old.encoder != new.encoder:
        return "another frame encoder"
    if tuple(new.classes[: len(old.classes)]) != tuple(old.classes):
        return "the classes changed (a new version may only add classes after the old ones)"
    if old.background_index != new.background_index:
        return "another background class"
    if span != new_span:
        return f"window span {span} → {new_span} rows"
    return None
