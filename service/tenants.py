"""A model per tenant: the versions a tenant taught, served to that tenant only.

A service with one API key (or none) has one user: a taught version goes into the served
model folder and everyone gets it (service/jobs.py). With several keys, each key is a tenant
(service/auth.py), and the versions a tenant trains go to its own folder beside its examples,
GAD_DATA_DIR/<tenant>/<model>.versions/ (service/examples/store.py `tenant_versions`). This
module serves them:

- a tenant with no version of its own gets the shared model (GAD_MODEL's versions, switched,
  watched and rolled back as before);
- a tenant with one gets the newest of its folder, loaded on its first request after a start
  (or when its job finishes), checked like any version (manifest, every file's sha256, a
  verified export) — a version that fails is not served and the tenant keeps the shared
  model; it is tried again once its folder changes;
- its streams follow its own versions only (an open stream moves at a frame boundary when a
  new one is switched to, as with the shared model); its `/v1/models`, reload and rollback
  act on its own versions; another tenant never sees them.

Every version, shared or a tenant's, shares the process's feature cache, metrics and event
bus (`Infra`); a tenant's version holds its own graphs (a pose package: the two BlazePose
graphs and the head, ~40 MB each loaded).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from runtime.backends import Backend
from runtime.errors import GADError
from runtime.manifest.package import version_folders
from service.examples.store import OPEN_TENANT, tenant_versions
from service.versions import ModelVersions, VersionRefused, last_change

log = logging.getLogger(__name__)


class TenantModels:
    """The shared versions and each tenant's own (module doc)."""

    def __init__(self, shared: ModelVersions, backend: Backend | None) -> None:
        self.shared = shared
        self.settings = shared.settings
        self.backend = backend
        self.own: dict[str, ModelVersions] = {}
        self.refused: dict[str, float] = {}  # tenant → its folder's last change when refused
        self.lock = asyncio.Lock()

    @property
    def separate(self) -> bool:
        """Whether tenants train versions of their own: more than one API key."""
        return len(self.settings.api_keys) > 1

    def folder(self, tenant: str | None) -> Path:
        """Where `tenant`'s own versions of the served model go."""
        name = self.shared.current.package.name
        return tenant_versions(self.settings.data_dir, tenant, name)

    def loaded(self, tenant: str | None) -> ModelVersions:
        """`tenant`'s versions as loaded now (no loading: a stream asks this every frame)."""
        return self.own.get(tenant or OPEN_TENANT, self.shared)

    async def versions(self, tenant: str | None) -> ModelVersions:
        """`tenant`'s versions: its own, loaded from its folder on first use, else the
        shared ones."""
        key = tenant or OPEN_TENANT
        if not self.separate or key in self.own:
            return self.loaded(tenant)
        folder = self.folder(tenant)
        if not folder.is_dir() or not version_folders(folder):
            return self.shared
        async with self.lock:
            if key in self.own:
                return self.own[key]
            stamp = last_change(folder)
            if self.refused.get(key) == stamp:
                return self.shared
            try:
                own = await asyncio.to_thread(self._open, folder)
            except GADError as exc:
                self.refused[key] = stamp
                self.shared.infra.metrics.reloads.labels("refused").inc()
                log.warning("tenant %s: its model version refused: %s", key, exc)
                return self.shared
            own.current.start()
            self.own[key] = own
            log.info(
                "tenant %s: serving its own model %s v%s",
                key,
                own.current.package.name,
                own.current.package.version,
            )
            return own

    async def switch(self, tenant: str | None, version: str) -> None:
        """Serve the new `version` a job just wrote: to `tenant` alone from its folder with
        several keys, else to everyone from the shared model folder."""
        if not self.separate:
            await self.shared.reload(version)
            return
        key = tenant or OPEN_TENANT
        self.refused.pop(key, None)
        own = await self.versions(tenant)
        if own is self.shared:
            raise VersionRefused(f"version {version} of {self.folder(tenant)} was refused")
        await own.reload(version)

    async def close(self) -> None:
        for own in self.own.values():
            await own.close_models()

    def _open(self, folder: Path) -> ModelVersions:
        return ModelVersions(self.settings, self.backend, self.shared.infra, folder, verified=True)
