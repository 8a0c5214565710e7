"""The examples store (service/examples/): the standard feature layout that `gad train`
reads, per tenant and model; labels and their rows; no package needed (fast)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtime.oad_layout import feature_dir_name
from runtime.windowing import WindowSpec
from service.errors import Conflict, NotFound, UnusableInput
from service.examples.labels import (
    check_label,
    one_segment,
    parse_segments,
    row_labels,
    runs,
)
from service.examples.store import ExampleSet
from training.data_info import load_data_info
from training.dataset import TrainWindows, load_split

DIM = 40
ENCODER = {"kind": "pose-blazepose", "name": "pose-blazepose", "feature_dim": DIM}


def examples(root: Path, tenant: str | None = None, **kwargs: object) -> ExampleSet:
    settings = {
        "fps": 4.0,
        "feature_dim": DIM,
        "encoder": ENCODER,
        "encoder_name": "pose-blazepose",
        "background": "background",
        "limit": 10,
    } | kwargs
    return ExampleSet.at(root, tenant, "demo-pose", **settings)  # type: ignore[arg-type]


def rows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)


def test_examples_land_in_the_layout_the_training_reader_loads(tmp_path: Path) -> None:
    store = examples(tmp_path)
    wave = store.add(rows(12), ["background"] * 4 + ["wave"] * 8, {"source": {"kind": "clip"}})
    store.add(rows(6, 1), ["raise hand"] * 6, {"source": {"kind": "stream"}})
    nothing = store.add(rows(5, 2), ["background"] * 5, {"source": {"kind": "clip"}})
    root = tmp_path / "open" / "demo-pose"
    assert store.root == root
    assert (root / feature_dir_name("pose-blazepose") / f"{wave['id']}.npy").is_file()

    info = load_data_info(root)  # what `gad train ROOT` reads
    assert info.class_names == ("background", "raise hand", "wave")
    assert info.fps == 4.0 and info.encoder == ENCODER and info.background_index == 0
    videos = {v.session: v for v in load_split(info, "train")}
    assert set(videos) == {wave["id"], nothing["id"]} | {r["id"] for r in store.records()}
    got = videos[wave["id"]]
    np.testing.assert_array_equal(got.features, rows(12))
    assert got.labels.tolist() == [0] * 4 + [2] * 8
    windows = TrainWindows(list(videos.values()), info, WindowSpec(4, 4, 1))
    assert len(windows) > 0 and windows[0][0].shape == (8, DIM)

    assert wave["frames"] == ["background"] * 4 + ["wave"] * 8
    assert wave["segments"][1] == {
        "label": "wave", "start_row": 4, "end_row": 12, "start": 1.0, "end": 3.0
    }  # fmt: skip
    summary = store.summary()
    assert summary["examples"] == 3 and tuple(summary["classes"]) == info.class_names
    assert summary["labels"]["wave"] == {"count": 1, "seconds": 2.0, "ids": [wave["id"]]}
    assert summary["labels"]["background"]["count"] == 2
    assert summary["labels"]["background"]["seconds"] == 2.25


def test_removing_an_example_rebuilds_the_classes_and_targets(tmp_path: Path) -> None:
    store = examples(tmp_path)
    keep = store.add(rows(4), ["wave"] * 4, {})
    gone = store.add(rows(4), ["clap"] * 4, {})
    assert load_data_info(store.root).class_names == ("background", "clap", "wave")
    store.remove(gone["id"])
    info = load_data_info(store.root)
    assert info.class_names == ("background", "wave")
    assert info.train_sessions == (keep["id"],)
    assert load_split(info, "train")[0].targets.shape == (4, 2)
    assert not list(store.root.rglob(f"{gone['id']}*"))
    with pytest.raises(NotFound):
        store.get(gone["id"])
    with pytest.raises(NotFound):
        store.remove("../../etc/passwd")


def test_one_tenant_never_sees_anothers_examples(tmp_path: Path) -> None:
    mine, theirs = examples(tmp_path, "a" * 16), examples(tmp_path, "b" * 16)
    example = mine.add(rows(4), ["wave"] * 4, {})
    assert theirs.summary()["examples"] == 0
    with pytest.raises(NotFound):
        theirs.get(example["id"])
    with pytest.raises(NotFound):
        theirs.remove(example["id"])
    assert mine.get(example["id"])["rows"] == 4


def test_rows_of_another_encoder_or_over_the_limit_are_refused(tmp_path: Path) -> None:
    examples(tmp_path).add(rows(4), ["wave"] * 4, {})
    other = examples(tmp_path, encoder=ENCODER | {"feature_dim": 41})
    with pytest.raises(Conflict, match="another encoder"):
        other.add(rows(4), ["wave"] * 4, {})
    small = examples(tmp_path / "small", limit=1)
    small.add(rows(4), ["wave"] * 4, {})
    with pytest.raises(Conflict, match="limit"):
        small.add(rows(4), ["wave"] * 4, {})


def test_labels_are_checked_and_kept_lower_case() -> None:
    assert check_label("  Raise   Hand ", "background") == "raise hand"
    assert check_label("Nothing", "background") == "background"
    assert check_label("Hände heben", "background") == "hände heben"
    for bad, why in [
        ("", "give the action"),
        ("wave<script>", "characters"),
        ("_x", "characters"),
        ("ambiguous", "reserved"),
        ("x" * 49, "at most 48"),
    ]:
        with pytest.raises(UnusableInput, match=why):
            check_label(bad, "background")


def test_a_clips_rows_take_their_label_by_time() -> None:
    # 12 rows at 4 fps (3 s); wave from 1 s to 2 s: rows 4..7 (row t at t / 4 s)
    keep, labels = row_labels(12, 4.0, [one_segment("wave", 1.0, 2.0)], "background", "background")
    assert keep == slice(0, 12)
    assert labels == ["background"] * 4 + ["wave"] * 4 + ["background"] * 4
    keep, labels = row_labels(12, 4.0, [one_segment("wave", 1.0, 2.0)], "background", "drop")
    assert keep == slice(4, 8) and labels == ["wave"] * 4
    keep, labels = row_labels(12, 4.0, [one_segment("wave", None, None)], "background", "drop")
    assert labels == ["wave"] * 12
    segments = parse_segments(
        [{"label": "wave", "start": 0, "end": 1}, {"label": "clap", "start": 2, "end": 3}],
        "background",
    )
    _, labels = row_labels(12, 4.0, segments, "background", "background")
    assert runs(labels) == [
        {"label": "wave", "start_row": 0, "end_row": 4},
        {"label": "background", "start_row": 4, "end_row": 8},
        {"label": "clap", "start_row": 8, "end_row": 12},
    ]
    with pytest.raises(UnusableInput, match="covers no frame"):
        row_labels(12, 4.0, [one_segment("wave", 5.0, 6.0)], "background", "background")
    with pytest.raises(UnusableInput, match="start < end"):
        one_segment("wave", 2.0, 1.0)
