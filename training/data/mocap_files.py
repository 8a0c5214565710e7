"""DeepMimic's motion-capture clips and humanoid, taken out of the `pybullet` wheel on first use.

The pybullet wheel on PyPI (zlib licence, 103 MB) ships DeepMimic's `humanoid3d_*.txt`
clips and the humanoid they drive. pybullet itself is not needed (nothing here simulates),
so instead of installing it the wheel is downloaded once with pip and only those files
(~1.3 MB) are kept:

    $GAD_CACHE_DIR/mocap/pybullet-3.2.7/motions/humanoid3d_walk.txt, ...
    $GAD_CACHE_DIR/mocap/pybullet-3.2.7/humanoid.urdf

A wheel already on disk can be given instead (`wheel=`, `gad data mocap --wheel`), and pip's
own settings apply (PIP_INDEX_URL, PIP_FIND_LINKS) for offline or mirrored installs.

More real human motion comes from Debian's `assimp-testmodels` package (BSD-3-Clause; the
two CMU files carry CMU's "free for use in research and commercial projects" note, kept beside
them): three BVH recordings, a boxer who falls and gets up and two of CMU's subject 1 (hops,
a climb). The .deb (20 MB) is fetched once with `apt-get download` where apt is present, else
from deb.debian.org (GAD_DEBIAN_MIRROR to use another), its SHA-256 checked against the one
Debian publishes, and only those files are kept (`gad data mocap --deb` takes one on disk):

    $GAD_CACHE_DIR/mocap/assimp-testmodels-5.2.5/{Boxing_Toes,01_01,01_03}.bvh
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
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


BVH_DEB = "assimp-testmodels_5.2.5~ds0-1_all.deb"
BVH_DEB_SHA256 = "526f326186000cd6f631ea806128548a7d3d391abd8149fddc5c4c8513e80b8a"
BVH_FOLDER = "assimp-testmodels-5.2.5"
BVH_FILES = ("Boxing_Toes.bvh", "01_01.bvh", "01_03.bvh")
_IN_DEB_BVH = "./usr/share/assimp/models/BVH/"
_IN_DEB_NOTES = {
    "./usr/share/assimp/models/BVH/01_nn.bvh.source.txt": "CMU-source.txt",
    "./usr/share/doc/assimp-testmodels/copyright": "copyright",
}
DEBIAN_MIRROR = "https://deb.debian.org/debian"


def mocap_root(cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / "mocap"


def mocap_dir(cache_dir: Path | None = None) -> Path:
    return mocap_root(cache_dir) / FOLDER


def ensure_mocap_files(
    cache_dir: Path | None = None,
    *,
    wheel: Path | None = None,
    deb: Path | None = None,
    say: Callable[[str], None] | None = None,
) -> Path:
    """The mocap folder: DeepMimic's clips (FOLDER: `motions/humanoid3d_*.txt`,
    `humanoid.urdf`) and the BVH recordings (BVH_FOLDER); each fetched if absent."""
    _ensure_pybullet(cache_dir, wheel, say)
    _ensure_bvh(cache_dir, deb, say)
    return mocap_root(cache_dir)


def _ensure_pybullet(
    cache_dir: Path | None, wheel: Path | None, say: Callable[[str], None] | None
) -> Path:
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


def _ensure_bvh(
    cache_dir: Path | None, deb: Path | None, say: Callable[[str], None] | None
) -> Path:
    target = mocap_root(cache_dir) / BVH_FOLDER
    if all((target / name).is_file() for name in BVH_FILES):
        return target
    with tempfile.TemporaryDirectory(prefix="gad-assimp-") as tmp:
        if deb is None:
            if say is not None:
                say(f"fetching the BVH recordings: downloading Debian's {BVH_DEB} (~20 MB) once")
            deb = _download_deb(Path(tmp))
        data = Path(deb).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != BVH_DEB_SHA256:
            raise ConfigError(
                f"{deb}: SHA-256 {digest} is not {BVH_DEB}'s ({BVH_DEB_SHA256}); "
                "a corrupt download or another version"
            )
        with building(target) as folder:
            _extract_deb(data, folder)
    if say is not None:
        say(f"BVH recordings ready in {target}")
    return target


def _download_deb(dest: Path) -> Path:
    if shutil.which("apt-get"):
        done = subprocess.run(
            ["apt-get", "download", "-q", "assimp-testmodels=5.2.5~ds0-1"],
            cwd=dest,
            capture_output=True,
            text=True,
            check=False,
        )
        found = sorted(dest.glob("assimp-testmodels_*.deb"))
        if done.returncode == 0 and found:
            return found[0]
    mirror = os.environ.get("GAD_DEBIAN_MIRROR", DEBIAN_MIRROR).rstrip("/")
    url = f"{mirror}/pool/main/a/assimp/{BVH_DEB.replace('~', '%7E')}"
    try:
        with urllib.request.urlopen(url, timeout=120) as answer:
            (dest / BVH_DEB).write_bytes(answer.read())
    except OSError as exc:
        raise ConfigError(
            f"could not download {url}: {exc}. Download {BVH_DEB} by hand "
            "(apt-get download assimp-testmodels) and pass it with --deb."
        ) from exc
    return dest / BVH_DEB


def _extract_deb(data: bytes, folder: Path) -> None:
    """A .deb is an ar archive; its data.tar.* member holds the files."""
    if not data.startswith(b"!<arch>\n"):
        raise ConfigError("not a Debian package (no ar header)")
    pos, payload = 8, None
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
        if name.startswith("data.tar"):
            payload = data[pos + 60 : pos + 60 + size]
            break
        pos += 60 + size + (size % 2)
    if payload is None:
        raise ConfigError("the Debian package has no data.tar member")
    wanted = {_IN_DEB_BVH + n: n for n in BVH_FILES} | _IN_DEB_NOTES
    with tarfile.open(fileobj=io.BytesIO(payload)) as archive:
        for member in archive:
            if member.name in wanted and member.isfile():
                source = archive.extractfile(member)
                assert source is not None
                (folder / wanted.pop(member.name)).write_bytes(source.read())
    if missing := [n for n in wanted.values() if n in BVH_FILES]:
        raise ConfigError(f"the Debian package lacks {missing}")
