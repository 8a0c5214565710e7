"""The versions of the served model in one process, and the switch between them.

`gad export` and `gad teach train` write a model folder's versions side by side
(`NAME/1/`, `NAME/2/`, …). The service serves the newest (or the version GAD_MODEL names),
and, while it runs, can switch to another without a restart:

  load      the version is read and checked like any package (manifest, every file's
            sha256, and an export that verified its graphs: `verify` in the manifest), its
            graphs opened beside the serving ones, off the event loop; a version that fails
            is never served (the reason is logged and returned, the current one goes on).
  switch    `current` becomes the new version: new streams get it; an open stream moves at
            its next frame boundary and keeps its window (StreamSession.follow), when the
            new version reads the same rows (same encoder, feature size, fps and span) and
            keeps the old classes in order (it may add some); a stream whose rows would
            change meaning stays on its version until it ends.
  rollback  back to the version before (kept loaded for that).

`watch` polls the model folder (GAD_MODEL_WATCH_S) and switches to a newer version when one
appears; `POST /v1/models/reload` and `POST /v1/models/rollback` do it on request. Every
version shares the process's feature cache, metrics and event bus (`Infra`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from runtime.backends import Backend
from runtime.errors import GADError
from runtime.manifest.package import resolve_package_dir, version_folders, version_key
from service.errors import Conflict
from service.served import Infra, ServedModel
from service.settings import Settings

log = logging.getLogger(__name__)


class VersionRefused(Conflict):
    """A version that cannot be served (missing, unreadable, unverified, or not the same
    model); the current one goes on."""


class ModelVersions:
    """The current version, the one before it (rollback), and those replaced while streams
    still used them (closed when the service stops)."""

    def __init__(
        self,
        settings: Settings,
        backend: Backend | None,
        infra: Infra,
        path: Path | None = None,
        *,
        verified: bool = False,
    ) -> None:
        """`path`: the model folder (or one version's) to serve; None: GAD_MODEL's. A
        tenant's own versions (service/tenants.py) pass their folder, and `verified`: its
        first version, like every switch, must be a verified export."""
        self.settings = settings
        self.backend = backend
        self.infra = infra
        path = settings.model_dir if path is None else path
        # A model folder (versions inside) can be watched; a version folder is fixed.
        self.folder: Path | None = None if (path / "manifest.json").is_file() else path
        self.current = self._build(resolve_package_dir(path), verified=verified)
        self.previous: ServedModel | None = None
        self.retired: list[ServedModel] = []
        self.lock = asyncio.Lock()
        self.on_switch: Callable[[ServedModel], None] = lambda served: None

    @property
    def loaded(self) -> list[ServedModel]:
        out = [self.current] + ([self.previous] if self.previous else [])
        return out + self.retired

    def start(self) -> None:
        self.infra.start()
        self.current.start()

    async def close(self) -> None:
        await self.infra.events.close(self.settings.event_drain_s)
        await self.close_models()
        await self.infra.cache.close()

    async def close_models(self) -> None:
        """Close the versions' graphs, not the process's cache and event bus (`Infra`)."""
        for served in self.loaded:
            await served.close()

    def available(self) -> list[str]:
        """The version folders the model folder holds, oldest first."""
        if self.folder is None:
            return [self.current.package.version]
        return [p.name for p in version_folders(self.folder)]

    def describe(self) -> dict[str, object]:
        """What `/v1/models` says of the versions."""
        return {
            "current": self.current.package.version,
            "previous": None if self.previous is None else self.previous.package.version,
            "available": self.available(),
            "watching": self.folder is not None and self.settings.model_watch_s > 0,
        }

    def newest(self) -> str | None:
        versions = self.available()
        return versions[-1] if versions else None

    async def reload(self, version: str | None = None) -> ServedModel:
        """Load `version` (None: the newest in the model folder) and make it current;
        VersionRefused (the current one goes on) when it cannot be served."""
        async with self.lock:
            if version is None:
                version = self.newest()
            if version is None or self.folder is None:
                raise VersionRefused(
                    "GAD_MODEL names one version folder: point it at the model folder (the "
                    "versions' parent) to switch versions"
                )
            if version == self.current.package.version:
                return self.current
            folder = self.folder / version
            if not (folder / "manifest.json").is_file():
                raise VersionRefused(f"no version {version!r} in {self.folder}")
            try:
                served = await asyncio.to_thread(self._build, folder)
            except GADError as exc:
                self.infra.metrics.reloads.labels("refused").inc()
                log.warning("model version %s refused: %s", version, exc)
                raise VersionRefused(f"version {version} refused: {exc}") from exc
            served.start()
            self._make_current(served)
            self.infra.metrics.reloads.labels("switched").inc()
            return served

    async def rollback(self) -> ServedModel:
        async with self.lock:
            if self.previous is None:
                raise VersionRefused("no earlier version loaded to roll back to")
            before = self.previous
            self._make_current(before)
            self.infra.metrics.reloads.labels("rolled_back").inc()
            return before

    async def watch(self, interval_s: float) -> None:
        """Switch to a version that appears in the model folder after the watch began and
        is newer than any before it (checked every `interval_s`; a rollback is not undone).
        A refused one is tried again once its files change (an export still being written)."""
        known = self.newest()
        refused: tuple[str, float] | None = None
        while True:
            await asyncio.sleep(interval_s)
            newest = self.newest()
            if newest is None or self.folder is None or newest == known:
                continue
            if known is not None and version_key(self.folder / newest) < version_key(
                self.folder / known
            ):
                known = newest  # the newest was removed: nothing to switch to
                continue
            stamp = (newest, last_change(self.folder / newest))
            if stamp == refused:
                continue
            try:
                await self.reload(newest)
            except VersionRefused:
                refused = stamp
            else:
                known, refused = newest, None

    def _make_current(self, served: ServedModel) -> None:
        old = self.current
        if self.previous is not None and self.previous is not served:
            self.retired.append(self.previous)
        if served in self.retired:
            self.retired.remove(served)
        self.previous, self.current = old, served
        self.on_switch(served)
        log.info(
            "serving model %s v%s (was v%s): new streams get it, open streams move at their "
            "next frame",
            served.package.name,
            served.package.version,
            old.package.version,
        )

    def _build(self, folder: Path, *, verified: bool = True) -> ServedModel:
        """The version at `folder`, read and checked (manifest, every file's sha256; with
        `verified`, an export that verified its graphs) and its graphs opened; not started."""
        served = ServedModel.build(self.settings, self.backend, infra=self.infra, folder=folder)
        if verified and served.package.info.verify is None:
            raise VersionRefused(
                f"{folder} was exported without verification (`gad export --no-verify`): "
                "only a verified export is served"
            )
        return served


def last_change(folder: Path) -> float:
    """The latest change to any file of a version folder."""
    return max((p.stat().st_mtime for p in folder.rglob("*") if p.is_file()), default=0.0)
