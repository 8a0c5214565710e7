"""Build a cache folder under a temporary name and publish it whole, so a crash or a
concurrent builder never leaves a half-written folder where a finished one is expected;
`cache_lock` around the check and the build makes one process build while the others wait
(setup's two demo builds, the test workers of `make test`), so a finished folder is never
replaced under a process reading it."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def default_cache_dir() -> Path:
    """`$GAD_CACHE_DIR`, else `$XDG_CACHE_HOME/gad-stream`, else `~/.cache/gad-stream`:
    converted backbones, the Llama-3 tokenizer and the demo model live here."""
    if env := os.environ.get("GAD_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gad-stream"


def default_data_dir() -> Path:
    """`$XDG_DATA_HOME/gad-stream`, else `~/.local/share/gad-stream`: what users made and
    must not lose with a cache (the examples they taught the service: service/examples/)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "gad-stream"


@contextmanager
def building(target: Path) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces `target` atomically."""
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():  # a build that died half-way
        shutil.rmtree(target, ignore_errors=True)
    try:
        os.replace(tmp, target)
    except OSError:  # another process published first; keep theirs
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def cache_lock(target: Path) -> Iterator[None]:
    """Hold the lock of cache entry `target` (a file beside it): check whether the entry is
    built inside, then build it if not."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / f".{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
