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

from service.auth import authorize_request
from service.served import ServedModel
from service.settings import Settings
from service.versions import ModelVersions


class Streams:
    """The streams open in this process, and the shutdown that closes them with 1012."""

    def __init__(self) -> None:
        self.open: set[asyncio.Task[None]] = set()
        self.closing = False
        self.count = 0


def get_settings(connection: HTTPConnection) -> Settings:
    settings: Settings = connection.app.state.settings
    return settings


def get_served(connection: HTTPConnection) -> ServedModel:
    """The current version of the served model (service/versions.py)."""
    served: ServedModel = connection.app.state.served
    return served


def get_versions(connection: HTTPConnection) -> ModelVersions:
    versions: ModelVersions = connection.app.state.versions
    return versions


def get_streams(connection: HTTPConnection) -> Streams:
    streams: Streams = connection.app.state.streams
    return streams


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServedDep = Annotated[ServedModel, Depends(get_served)]
VersionsDep = Annotated[ModelVersions, Depends(get_versions)]
StreamsDep = Annotated[Streams, Depends(get_streams)]


def require_key(connection: HTTPConnection, settings: SettingsDep) -> str | None:
    """The caller's tenant (None: auth off); AuthError (→ 401) for a missing or wrong key."""
    return authorize_request(connection, settings)


TenantDep = Annotated[str | None, Depends(require_key)]  # the caller's tenant (None: no auth)
