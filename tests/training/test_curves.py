"""training/curves.py: a run's learning curve, from its logs to the table and back."""

import json
from pathlib import Path

from training.curves import CurvePoint, curves_markdown, learning_curve, parse_curves


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_each_validation_gets_the_mean_training_loss_since_the_previous_one(
    tmp_path: Path,
) -> None:
    train = [{"step": s, "loss": float(s), "cls_loss": s / 10, "lm_loss": 1.0} for s in
             (10, 20, 30, 40)]  # fmt: skip
    # A resume logged step 40 again (the second record is the one kept).
    train.append({"step": 40, "loss": 80.0, "cls_loss": 8.0, "lm_loss": 1.0})
    train.append({"note": "a line that is not the loop's"})
    write_jsonl(tmp_path / "log.jsonl", train)
    write_jsonl(
        tmp_path / "val_log.jsonl",
        [
            {"step": 20, "loss": 2.0, "cls_loss": 1.5, "lm_loss": 0.5, "val_loss": 1.5},
            {"step": 40, "loss": 1.0, "cls_loss": 0.7, "lm_loss": 0.3, "val_loss": 0.7},
        ],
    )
    first, second = learning_curve(tmp_path, evaluated=40)
    assert not first.kept and second.kept
    assert (first.step, first.train_loss, first.train_cls) == (20, 15.0, 1.5)  # mean of 10, 20
    assert (second.step, second.train_loss, second.train_cls) == (40, 55.0, 5.5)  # 30, 80
    assert (second.val_loss, second.val_cls, second.val_lm) == (1.0, 0.7, 0.3)
    assert second.watched == 0.7 and second.train_watched == 5.5  # the [CLS] CE is watched


def test_a_generative_curve_watches_the_lm_loss_and_an_unvalidated_run_has_none(
    tmp_path: Path,
) -> None:
    write_jsonl(tmp_path / "log.jsonl", [{"step": 5, "loss": 3.0}])
    assert learning_curve(tmp_path) == ()  # trained without --val-data
    write_jsonl(tmp_path / "val_log.jsonl", [{"step": 5, "loss": 2.5, "val_loss": 2.5}])
    (point,) = learning_curve(tmp_path)
    assert (point.watched, point.train_watched, point.val_cls, point.train_lm) == (
        2.5, 3.0, None, None,
    )  # fmt: skip


def test_the_markdown_reads_back_as_the_curves_it_was_written_from() -> None:
    gad = (CurvePoint(25, 1.25, 1.0, 0.5, 1.5, 1.25, None),
           CurvePoint(50, 0.75, 0.5, 0.5, 1.0, 0.625, 0.25, kept=True))  # fmt: skip
    generative = (CurvePoint(25, 3.0, None, None, 2.0, None, None),)
    text = "| classifier | mAP % |\n|---|---:|\n| gad | 50.0 |\n" + "\n".join(
        curves_markdown({"gad": gad, "discriminative": (), "generative": generative})
    )
    assert "Learning curve: discriminative" not in text  # nothing validated: no section
    assert parse_curves(text) == {"gad": gad, "generative": generative}


def test_the_evaluated_checkpoint_is_marked_where_it_is_not_the_lowest_loss(tmp_path: Path) -> None:
    # Step 75's loss is lower, but by less than the patience's minimum gain: step 50's
    # checkpoint is the one kept and evaluated, and the curve marks it (not the lowest).
    write_jsonl(tmp_path / "log.jsonl", [{"step": s, "loss": 1.0} for s in (25, 50, 75)])
    write_jsonl(tmp_path / "val_log.jsonl", [
        {"step": 25, "loss": 2.0, "val_loss": 2.0},
        {"step": 50, "loss": 1.0, "val_loss": 1.0},
        {"step": 75, "loss": 0.999, "val_loss": 0.999},
    ])  # fmt: skip
    curve = learning_curve(tmp_path, evaluated=50)
    assert [p.kept for p in curve] == [False, True, False]
    text = "\n".join(curves_markdown({"generative": curve}))
    assert "| 50 | 1.0000 | — | — | 1.0000 | — | — | ✓ |" in text
    assert parse_curves(text)["generative"] == curve


def test_a_table_written_before_the_evaluated_column_still_reads() -> None:
    old = ("<details><summary>Learning curve: gad (train: the mean)</summary>\n\n"
           "| step | train loss | train CE | train LM | val loss | val CE | val LM |\n"
           "|---:|---:|---:|---:|---:|---:|---:|\n"
           "| 25 | 1.2500 | 1.0000 | 0.5000 | 1.5000 | 1.2500 | — |\n\n</details>")  # fmt: skip
    assert parse_curves(old) == {"gad": (CurvePoint(25, 1.25, 1.0, 0.5, 1.5, 1.25, None),)}
