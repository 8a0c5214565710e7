"""`gad demo build --kind render|pose` and `gad serve --demo`: two demo models that live
apart, each with its own recipe stamp (building them is what the service tests and
`make setup` do; here only what decides whether one is built and where)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gad import demo
from gad.cli import main


def test_the_two_kinds_live_apart(tmp_path: Path) -> None:
    render, pose = demo.demo_root(tmp_path), demo.demo_root(tmp_path, kind="pose")
    assert render == tmp_path / "demo" and pose == tmp_path / "demo-pose"
    assert demo.package_dir(render) == render / "models" / "demo"
    assert demo.package_dir(pose, kind="pose") == pose / "models" / "demo-pose"
    assert demo.recipe_id() != demo.recipe_id("pose")
    steps = demo.recipe("pose").steps(pose, "demo-pose")
    assert [argv[:2] for argv in steps] == [
        ["data", "mocap"],
        ["train", str(pose / "mocap")],
        ["eval", str(pose / "run")],
        ["export", str(pose / "run")],
    ]
    with pytest.raises(ValueError, match="render, pose"):
        demo.recipe("webcam")


def built_package(root: Path, kind: str, recipe: str) -> None:
    """What `build_demo` leaves: a package version with a manifest, and the stamp."""
    version = demo.package_dir(root, kind=kind) / "1"
    version.mkdir(parents=True)
    (version / "manifest.json").write_text("{}")
    (root / demo.STAMP).write_text(json.dumps({"kind": kind, "recipe": recipe}))


def test_a_stamp_counts_only_for_its_own_recipe(tmp_path: Path) -> None:
    root = demo.demo_root(tmp_path, kind="pose")
    assert not demo.is_built(root, kind="pose")
    built_package(root, "pose", demo.recipe_id("render"))  # another recipe's stamp
    assert not demo.is_built(root, kind="pose")
    (root / demo.STAMP).write_text(json.dumps({"recipe": demo.recipe_id("pose")}))
    assert demo.is_built(root, kind="pose")
    assert not demo.is_built(root)  # the render package is not there
    (root / demo.STAMP).write_text("{not json")
    assert not demo.is_built(root, kind="pose")


def test_serve_demo_pose_says_how_to_build_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GAD_CACHE_DIR", str(tmp_path))
    assert main(["serve", "--demo", "pose"]) == 2
    assert "run `gad demo build --kind pose`" in capsys.readouterr().err


def test_demo_kind_and_serve_flags_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "build", "--kind", "webcam"])
    assert "invalid choice: 'webcam'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--demo", "pose", "--model", "models/x"])
    assert "not allowed with argument" in capsys.readouterr().err
