"""The examples one tenant taught one model, kept as a dataset in the standard feature
layout (runtime/oad_layout.py) that `gad train` reads as it is:

    DATA_DIR/<tenant>/<model name>/
        data_info.json                   {"examples": entry}: classes = the background first,
                                         then the taught labels sorted; every example in
                                         train_session_set (the training job splits); encoder
                                         = the served encoder's description
        <feature dir>/<id>.npy           [rows, D] float32: the rows the service computed
        target_perframe/<id>.npy         [rows, C] one-hot, rebuilt when the classes change
        examples/<id>.json               the example: its label runs, source, model, time

`<tenant>` is the API key's tenant (service/auth.py: a digest of the key), `open` when the
service has no keys; `<feature dir>` is `rgb_<encoder>` as `gad data extract` names it
(`features` for a model that takes feature rows).

Writes hold an exclusive lock on the folder (`.lock`, flock: replicas sharing the folder
take turns) and every file is written whole (a temporary file, then a rename). An example's
JSON is written after its rows and removed before them, so a reader never lists an
example whose rows are missing; the targets and data_info.json follow from the JSON files
and are rebuilt by every write. Blocking: call from a worker thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtime.oad_layout import (
    DATA_INFO,
    TARGET_DIR,
    atomic_save,
    atomic_text,
    data_info_entry,
    feature_dir_name,
    one_hot,
    write_data_info,
)
from service.errors import Conflict, NotFound
from service.examples.labels import expand, runs

DATASET = "examples"  # the entry's name in data_info.json
EXAMPLES_DIR = "examples"
OPEN_TENANT = "open"
EXAMPLE_ID = re.compile(r"[0-9a-f]{12}")
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def folder_name(name: str) -> str:
    """A tenant's or model's name as a folder: as it is when safe, else a digest of it."""
    if SAFE_NAME.fullmatch(name):
        return name
    import hashlib

    return "x-" + hashlib.sha256(name.encode()).hexdigest()[:16]


def tenant_folder(data_dir: Path, tenant: str | None, model: str) -> Path:
    """DATA/<tenant>/<model>: a tenant's examples for a model (its own versions beside, in
    `<model>.versions`)."""
    return Path(data_dir) / folder_name(tenant or OPEN_TENANT) / folder_name(model)


def tenant_versions(data_dir: Path, tenant: str | None, model: str) -> Path:
    """DATA/<tenant>/<model>.versions: the versions trained for one tenant of a service with
    several API keys (service/jobs.py), served to that tenant only (service/tenants.py)."""
    folder = tenant_folder(data_dir, tenant, model)
    return folder.with_name(f"{folder.name}.versions")


@dataclass(frozen=True)
class ExampleSet:
    """One tenant's examples for one model (module docstring). `background` is the class
    of rows with no action (the served model's background class name)."""

    root: Path
    fps: float
    feature_dim: int
    encoder: dict[str, Any] | None  # the served encoder's describe(); None: feature rows
    encoder_name: str | None
    background: str
    limit: int

    @classmethod
    def at(cls, data_dir: Path, tenant: str | None, model: str, **kwargs: Any) -> ExampleSet:
        return cls(tenant_folder(data_dir, tenant, model), **kwargs)

    @property
    def feature_dir(self) -> str:
        return "features" if self.encoder_name is None else feature_dir_name(self.encoder_name)

    # --- writes -------------------------------------------------------------------------

    def add(self, rows: np.ndarray, labels: list[str], info: dict[str, Any]) -> dict[str, Any]:
        """Keep `rows` [T, D] with one label per row; `info` (source, model, ...) goes into
        the example's record. Returns the record as `get` gives it."""
        rows = np.ascontiguousarray(rows, np.float32)
        assert rows.ndim == 2 and rows.shape[1] == self.feature_dim and len(rows) == len(labels)
        with self._locked():
            self._check_compatible()
            count = len(self._records())
            if count >= self.limit:
                raise Conflict(
                    f"{count} examples are kept for this model, the limit (GAD_MAX_EXAMPLES): "
                    "delete some first"
                )
            example = secrets.token_hex(6)
            record = {
                "id": example,
                "created": round(time.time(), 3),
                "fps": self.fps,
                "rows": len(rows),
                "segments": runs(labels),
                **info,
            }
            (self.root / self.feature_dir).mkdir(parents=True, exist_ok=True)
            atomic_save(self.root / self.feature_dir / f"{example}.npy", rows)
            (self.root / EXAMPLES_DIR).mkdir(parents=True, exist_ok=True)
            atomic_text(self._record_path(example), json.dumps(record, indent=1) + "\n")
            self._rebuild()
        return self.get(example)

    def remove(self, example: str) -> dict[str, Any]:
        """Delete an example (NotFound when there is none); returns what it was."""
        record = self.get(example)
        with self._locked():
            self._record_path(example).unlink(missing_ok=True)
            (self.root / self.feature_dir / f"{example}.npy").unlink(missing_ok=True)
            (self.root / TARGET_DIR / f"{example}.npy").unlink(missing_ok=True)
            self._rebuild()
        return record

    # --- reads --------------------------------------------------------------------------

    def get(self, example: str) -> dict[str, Any]:
        """An example's record with its per-row labels (`frames`) and its labels' seconds."""
        path = self._record_path(example) if EXAMPLE_ID.fullmatch(example) else None
        if path is None or not path.is_file():
            raise NotFound(f"no example {example[:40]!r} for this model and key")
        record = _read(path)
        if record is None:
            raise NotFound(f"example {example!r} is being written: retry")
        return _described(record)

    def summary(self) -> dict[str, Any]:
        """Per label: examples holding it (count, ids) and its seconds over all of them."""
        labels: dict[str, dict[str, Any]] = {}
        total_rows = 0
        records = self._records()
        for record in records:
            fps = float(record["fps"])
            total_rows += int(record["rows"])
            for label, rows in _label_rows(record).items():
                entry = labels.setdefault(label, {"count": 0, "seconds": 0.0, "ids": []})
                entry["count"] += 1
                entry["seconds"] = round(entry["seconds"] + rows / fps, 3)
                entry["ids"].append(record["id"])
        return {
            "examples": len(records),
            "rows": total_rows,
            "seconds": round(total_rows / self.fps, 3),
            "classes": self._classes(records),
            "labels": dict(sorted(labels.items())),
        }

    def records(self) -> list[dict[str, Any]]:
        return [_described(r) for r in self._records()]

    # --- the layout ---------------------------------------------------------------------

    def _record_path(self, example: str) -> Path:
        return self.root / EXAMPLES_DIR / f"{example}.json"

    def _records(self) -> list[dict[str, Any]]:
        folder = self.root / EXAMPLES_DIR
        if not folder.is_dir():
            return []
        found = (_read(path) for path in folder.glob("*.json"))
        return sorted((r for r in found if r is not None), key=lambda r: (r["created"], r["id"]))

    def _classes(self, records: list[dict[str, Any]]) -> list[str]:
        taught = {label for r in records for label in _label_rows(r)} - {self.background}
        return [self.background, *sorted(taught)]

    def _check_compatible(self) -> None:
        """Refuse to mix rows of another encoder, feature size or fps into this folder."""
        path = self.root / DATA_INFO
        if not path.is_file():
            return
        try:
            entry = json.loads(path.read_text()).get(DATASET, {})
        except (json.JSONDecodeError, AttributeError):
            return  # rebuilt below from the examples themselves
        same = (
            entry.get("encoder") == self.encoder
            and float(entry.get("fps", self.fps)) == self.fps
            and entry.get("feature_dirs", [self.feature_dir]) == [self.feature_dir]
        )
        if not same:
            raise Conflict(
                f"the examples kept for this model were computed by another encoder or fps "
                f"({(entry.get('encoder') or {}).get('name')}, {entry.get('fps')} fps): their "
                "rows would mean something else; delete them first (DELETE /v1/examples/ID)"
            )

    def _rebuild(self) -> None:
        """Targets (one-hot over the current classes) and data_info.json from the records."""
        records = self._records()
        classes = self._classes(records)
        index = {name: i for i, name in enumerate(classes)}
        targets_dir = self.root / TARGET_DIR
        targets_dir.mkdir(parents=True, exist_ok=True)
        for record in records:
            labels = np.array([index[label] for label in expand(record["segments"])], np.int64)
            targets = one_hot(labels, len(classes))
            path = targets_dir / f"{record['id']}.npy"
            with contextlib.suppress(OSError, ValueError):
                if np.array_equal(np.load(path), targets):
                    continue
            atomic_save(path, targets)
        entry = data_info_entry(
            class_names=classes,
            fps=self.fps,
            feature_dir=self.feature_dir,
            train=[r["id"] for r in records],
            test=[],
            encoder=self.encoder,
        )
        write_data_info(self.root, DATASET, entry)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        record: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record


def _label_rows(record: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in record["segments"]:
        counts[run["label"]] = counts.get(run["label"], 0) + run["end_row"] - run["start_row"]
    return counts


def _described(record: dict[str, Any]) -> dict[str, Any]:
    """A record as the API gives it: + labels (its actions, then background), seconds, and
    each run's times and `frames` (per-row labels: the page's label timeline)."""
    fps = float(record["fps"])
    counts = _label_rows(record)
    segments = [
        run | {"start": round(run["start_row"] / fps, 3), "end": round(run["end_row"] / fps, 3)}
        for run in record["segments"]
    ]
    return record | {
        "labels": list(counts),  # in order of first appearance
        "seconds": round(int(record["rows"]) / fps, 3),
        "segments": segments,
        "frames": expand(record["segments"]),
    }
