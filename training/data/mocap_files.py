"""DeepMimic's motion-capture clips and humanoid, taken out of the `pybullet` wheel on first use.

The pybullet wheel on PyPI (zlib licence, 103 MB) ships DeepMimic's `humanoid3d_*.txt`
clips and the humanoid they drive. pybullet itself is not needed (nothing here simulates),
so instead of installing it the wheel is downloaded once with pip and only those files
(~1.3 MB) are kept:

    $GAD_CACHE_DIR/mocap/pybullet-3.2.7/motions/humanoid3d_walk.txt, ...
    $GAD_CACHE_DIR/mocap/pybullet-3.2.7/humanoid.urdf

A wheel already on disk can be given instead (`wheel=`, `gad data mocap --wheel`), and pip's
own settings apply (PIP_INDEX_URL, PIP_FIND_LINKS) for offline or mirrored installs.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from runtime.cache_files import building, default_cache_dir
from runtime.errors import ConfigError

PYBULLET = "pybullet==3.2.7"
FOLDER = "pybullet-3.2.7"
MOTIONS = "motions"
URDF = "humanoid.urdf"
_IN_WHEEL_MOTIONS = "pybullet_data/data/motions/"
_IN_WHEEL_URDF = "pybullet_data/humanoid/humanoid.urdf"


def mocap_dir(cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / "mocap" / FOLDER


def ensure_mocap_files(
    cache_dir: Path | None = None,
    *,
    wheel: Path | None = None,
    say: Callable[[str], None] | None = None,
) -> Path:
    """The folder holding `motions/humanoid3d_*.txt` and `humanoid.urdf`; fetched if absent."""
    target = mocap_dir(cache_dir)
    if (target / URDF).is_file() and any((target / MOTIONS).glob("humanoid3d_*.txt")):
        return target
    with tempfile.TemporaryDirectory(prefix="gad-pybullet-") as tmp:
        if wheel is None:
            if say is not None:
                say(f"fetching the mocap clips: downloading the {PYBULLET} wheel (~103 MB) once")
            wheel = _download_wheel(Path(tmp))
        with building(target) as folder:
            _extract(Path(wheel), folder)
    if say is not None:
        say(f"mocap clips ready in {target}")
    return target


def _download_wheel(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", PYBULLET, "--no-deps"]
    cmd += ["--only-binary=:all:", "--dest", str(dest), "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(dest.glob("pybullet-*.whl"))
    if done.returncode != 0 or not wheels:
        raise ConfigError(
            f"could not download the {PYBULLET} wheel with pip (exit {done.returncode}): "
            f"{done.stderr.strip()[-400:]}. Download any pybullet 3.2.7 wheel by hand and "
            "pass it with --wheel."
        )
    return wheels[0]


def _extract(wheel: Path, folder: Path) -> None:
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{wheel} is not a readable wheel: {exc}") from exc
    with archive:
        names = archive.namelist()
        motions = [
            n
            for n in names
            if n.startswith(_IN_WHEEL_MOTIONS)
            and Path(n).name.startswith("humanoid3d_")
            and n.endswith(".txt")
        ]
        if _IN_WHEEL_URDF not in names or not motions:
            raise ConfigError(
                f"{wheel} lacks {_IN_WHEEL_URDF} or {_IN_WHEEL_MOTIONS}humanoid3d_*.txt: "
                f"is it a pybullet wheel?"
            )
        (folder / MOTIONS).mkdir()
        for name in motions:
            (folder / MOTIONS / Path(name).name).write_bytes(archive.read(name))
        (folder / URDF).write_bytes(archive.read(_IN_WHEEL_URDF))
