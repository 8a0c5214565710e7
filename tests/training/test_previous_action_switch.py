"""Each dataset writer records whether its data has previous actions (data_info.json)."""

from pathlib import Path
from types import SimpleNamespace

from training.data.extract import ExtractConfig, write_data_info
from training.data.procedures import ProcedureConfig, write_procedure_dataset
from training.data.synth import SynthConfig, write_synth_dataset
from training.data_info import load_data_info


def test_synthetic_procedures_have_previous_actions(tmp_path: Path) -> None:
    # Synth's actions follow a loose procedure ("open X" → "close X") and procedures are
    # ordered steps: the previous action is informative, as in EK100 / CrossTask.
    write_synth_dataset(tmp_path / "synth", SynthConfig(videos_train=1, videos_test=1))
    write_procedure_dataset(tmp_path / "proc", ProcedureConfig(videos_train=1, videos_test=1))
    assert load_data_info(tmp_path / "synth").previous_action is True
    assert load_data_info(tmp_path / "proc").previous_action is True


def test_extracted_videos_have_none_as_for_thumos(tmp_path: Path) -> None:
    # Rendered videos (a shuffled deck of actions) and a user's videos: none by default.
    cfg = ExtractConfig(videos=tmp_path, annotations=tmp_path / "a.csv", out=tmp_path)
    result = SimpleNamespace(
        dataset="RENDER",
        class_names=["background", "jump"],
        feature_dir="f",
        train=["a"],
        test=["b"],
    )
    write_data_info(cfg, result, SimpleNamespace(ignore_index=None), {})  # type: ignore[arg-type]
    assert load_data_info(tmp_path).previous_action is False
    assert '"previous_action": false' in (tmp_path / "data_info.json").read_text()
