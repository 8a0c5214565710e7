"""What the routes take from the app, as FastAPI dependencies: the settings, the served
model (package, frame model, encoder, cache, metrics), the open streams, and the API-key
check. The lifespan in service/app.py puts them on `app.state`; only this module reads them
from there, so a test can swap one with `app.dependency_overrides[get_served] = ...`.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from service.auth import AuthError, authorize_request, authorize_websocket
from service.served import ServedModel
from service.session import StreamSession
from service.settings import Settings
from service.tenants import TenantModels
from service.versions import ModelVersions

# A stream left without `end` keeps its state for its TTL (a resume continues it); this long
# after the TTL the connection that left it looks whether anyone took it up.
EXPIRY_GRACE_S = 1.0


class Streams:
    """The streams open in this process, the shutdown that closes them with 1012, and the
    streams left without `end` with an action open: if no connection takes one up within
    its TTL, the action ends as `expired` (docs/events.md)."""

    def __init__(self) -> None:
        self.open: set[asyncio.Task[None]] = set()
        self.closing = False
        self.count = 0
        self.leaving: dict[str, asyncio.Task[bool]] = {}  # by stream key

    def left(self, session: StreamSession, ttl_s: float) -> None:
        """`session`'s connection closed: watch its open action, if it has one."""
        events, cache, key = session.events, session.cache, session.state.key  # not its window
        if self.closing or not events.open:
            return  # at shutdown no watch: it would die with the process (docs/events.md)
        watch = events.expire_unless_taken(cache, session.state.owner, ttl_s + EXPIRY_GRACE_S)
        task = asyncio.create_task(watch, name=f"expiry-{session.stream_id}")
        self.leaving[key] = task
        task.add_done_callback(lambda done: self._forget(key, done))

    def taken(self, key: str) -> None:
        """A connection takes stream `key` up here: it, not one that left, ends it."""
        if (task := self.leaving.pop(key, None)) is not None:
            task.cancel()

    def _forget(self, key: str, task: asyncio.Task[bool]) -> None:
        if self.leaving.get(key) is task:
            del self.leaving[key]

    def stop_watching(self) -> None:
        for task in list(self.leaving.values()):
            task.cancel()
        self.leaving.clear()


def get_settings(connection: HTTPConnection) -> Settings:
    settings: Settings = connection.app.state.settings
    return settings


def get_tenants(connection: HTTPConnection) -> TenantModels:
    tenants: TenantModels = connection.app.state.tenants
    return tenants


def tenant_of(connection: HTTPConnection, settings: Settings) -> str | None:
    """The caller's tenant, or None (auth off, or a bad key: the route's own check answers
    401 for that)."""
    check = authorize_websocket if connection.scope["type"] == "websocket" else authorize_request
    try:
        return check(connection, settings)
    except AuthError:
        return None


async def get_versions(connection: HTTPConnection) -> ModelVersions:
    """The caller's versions: its own where it trained some (service/tenants.py), else the
    shared ones (service/versions.py)."""
    tenants = get_tenants(connection)
    return await tenants.versions(tenant_of(connection, get_settings(connection)))


async def get_served(connection: HTTPConnection) -> ServedModel:
    """The current version of the model the caller is served."""
    return (await get_versions(connection)).current


def get_streams(connection: HTTPConnection) -> Streams:
    streams: Streams = connection.app.state.streams
    return streams


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServedDep = Annotated[ServedModel, Depends(get_served)]
VersionsDep = Annotated[ModelVersions, Depends(get_versions)]
StreamsDep = Annotated[Streams, Depends(get_streams)]
TenantsDep = Annotated[TenantModels, Depends(get_tenants)]


def require_key(connection: HTTPConnection, settings: SettingsDep) -> str | None:
    """The caller's tenant (None: auth off); AuthError (→ 401) for a missing or wrong key."""
    return authorize_request(connection, settings)


TenantDep = Annotated[str | None, Depends(require_key)]  # the caller's tenant (None: no auth)
