"""`gad demo build --kind pose|render` and `gad serve --demo`: two demo models that live
apart, each with its own recipe stamp (building them is what the service tests and
`make setup` do; here only what decides whether one is built, where, and which one each
command uses: `gad serve` and `gad demo build` the pose demo, the benchmarks the render one)."""

from __future__ import annotations

import argparse
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
        ["data", "mocap"],  # held-out videos to calibrate on
        ["calibrate", str(pose / "models" / "demo-pose")],
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
    assert main(["serve", "--demo", "render"]) == 2
    assert "run `gad demo build --kind render`" in capsys.readouterr().err


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list:
    """The settings `gad serve` would start the service with (nothing is started)."""
    monkeypatch.setenv("GAD_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("GAD_MODEL", raising=False)
    seen: list = []

    def serve(settings: object, backend: object) -> None:  # the composition root's call
        assert getattr(backend, "name", None) == "onnx"
        seen.append(settings)

    monkeypatch.setattr("service.server.serve", serve)
    return seen


def test_serve_with_no_model_serves_the_pose_demo(
    tmp_path: Path, served: list, capsys: pytest.CaptureFixture[str]
) -> None:
    assert demo.SERVED_KIND == "pose"
    assert main(["serve"]) == 2  # nothing built yet: the error names the command
    err = capsys.readouterr().err
    assert "the pose demo model is not built" in err and "`gad demo build --kind pose`" in err
    render = demo.demo_root(tmp_path)
    built_package(render, "render", demo.recipe_id("render"))
    assert main(["serve"]) == 2  # the render demo alone is not the default
    pose = demo.demo_root(tmp_path, kind="pose")
    built_package(pose, "pose", demo.recipe_id("pose"))
    assert main(["serve"]) == 0
    assert main(["serve", "--demo", "render"]) == 0
    assert [s.model for s in served] == [
        demo.package_dir(pose, kind="pose"),
        demo.package_dir(render),
    ]


def test_serve_prefers_model_and_gad_model_to_the_demo(
    tmp_path: Path, served: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No demo is built: --model or GAD_MODEL is served without looking for one."""
    assert main(["serve", "--model", str(tmp_path / "flag")]) == 0
    monkeypatch.setenv("GAD_MODEL", str(tmp_path / "env"))
    assert main(["serve"]) == 0
    assert [s.model for s in served] == [tmp_path / "flag", tmp_path / "env"]


def test_demo_build_builds_the_served_kind_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GAD_CACHE_DIR", str(tmp_path))
    calls: list[tuple[Path, str]] = []
    monkeypatch.setattr(demo, "build_demo", lambda root, *, force, kind: calls.append((root, kind)))
    assert main(["demo", "build"]) == 0
    assert main(["demo", "build", "--kind", "render"]) == 0
    assert calls == [(tmp_path / "demo-pose", "pose"), (tmp_path / "demo", "render")]


def test_the_service_benchmarks_default_to_the_render_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`gad bench service/load/soak/delivery` stream the render demo's test video through
    its package, whichever demo `gad serve` serves."""
    from gad.commands.bench import _package_and_video

    monkeypatch.setenv("GAD_CACHE_DIR", str(tmp_path))
    render = tmp_path / "demo" / "render"
    render.mkdir(parents=True)
    (render / "split.json").write_text(json.dumps({"train": ["a"], "test": ["b", "c"]}))
    model, video = _package_and_video(argparse.Namespace(model=None, video=None))
    assert model == tmp_path / "demo" / "models" / "demo"
    assert video == render / "videos" / "b.mp4"


def test_demo_kind_and_serve_flags_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "build", "--kind", "webcam"])
    assert "invalid choice: 'webcam'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--demo", "pose", "--model", "models/x"])
    assert "not allowed with argument" in capsys.readouterr().err
