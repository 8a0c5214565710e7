import json
import shutil
from pathlib import Path

import pytest

from runtime.manifest import HEAD_FILE, MANIFEST_FILE, PackageError, read_package


@pytest.fixture
def package(tiny_package: tuple[Path, Path], tmp_path: Path) -> Path:
    copy = tmp_path / "demo" / "1"
    shutil.copytree(tiny_package[1], copy)
    return copy


def edit_manifest(folder: Path, **changes: object) -> None:
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest.update(changes)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_reads_a_version_or_the_newest_version(package: Path) -> None:
    assert read_package(package).folder == package
    shutil.copytree(package, package.parent / "10")
    shutil.copytree(package, package.parent / "9")
    assert read_package(package.parent).folder.name == "10"  # numeric, not lexical


def test_refuses_a_tampered_file(package: Path) -> None:
    head = package / HEAD_FILE
    data = bytearray(head.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    head.write_bytes(bytes(data))
    with pytest.raises(PackageError, match="sha256"):
        read_package(package)


def test_refuses_a_truncated_file(package: Path) -> None:
    head = package / HEAD_FILE
    head.write_bytes(head.read_bytes()[:1000])
    with pytest.raises(PackageError, match="truncated"):
        read_package(package)


def test_refuses_a_missing_file(package: Path) -> None:
    (package / HEAD_FILE).unlink()
    with pytest.raises(PackageError, match=r"head\.onnx is missing"):
        read_package(package)


def test_refuses_another_schema(package: Path) -> None:
    edit_manifest(package, schema_version=99)
    with pytest.raises(PackageError, match="schema_version 99"):
        read_package(package)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"classes": ["only"]}, "at least 2"),
        ({"background_index": 40}, "background_index 40"),
        ({"fps": 0}, "fps must be positive"),
        ({"window": {"long_frames": 4}}, "bad window"),
        ({"files": {}}, "not listed"),
        ({"files": {"../head.onnx": {"sha256": "x", "bytes": 1}}}, "not listed|plain name"),
    ],
)
def test_refuses_an_inconsistent_manifest(package: Path, change: dict, message: str) -> None:
    edit_manifest(package, **change)
    with pytest.raises(PackageError, match=message):
        read_package(package)


def test_refuses_missing_fields_bad_json_and_empty_folders(package: Path, tmp_path: Path) -> None:
    manifest = json.loads((package / MANIFEST_FILE).read_text())
    del manifest["fps"]
    (package / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match="lacks \\['fps'\\]"):
        read_package(package)
    (package / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(PackageError, match="not valid JSON"):
        read_package(package)
    with pytest.raises(PackageError, match="does not exist"):
        read_package(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PackageError, match="gad export"):
        read_package(tmp_path / "empty")
