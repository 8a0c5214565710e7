from pathlib import Path

import pytest

from runtime.cache_files import building


def test_publishes_whole_and_replaces_a_half_built_folder(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "thing"
    target.mkdir(parents=True)
    (target / "partial").write_text("left by a crash")
    with building(target) as tmp:
        assert tmp != target and tmp.is_dir()
        (tmp / "done").write_text("ok")
    assert sorted(p.name for p in target.iterdir()) == ["done"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["thing"]


def test_a_failed_build_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "thing"
    with pytest.raises(RuntimeError), building(target) as tmp:
        (tmp / "half").write_text("x")
        raise RuntimeError("conversion failed")
    assert not target.exists() and list(tmp_path.iterdir()) == []
