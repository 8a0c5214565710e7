"""The model's routes: what is served, and switching versions without a restart.

GET  /v1/models            the current version (as each stream's `ready` describes it) and
                           the versions: current, previous, available in the model folder
POST /v1/models/reload     {"version": "N"} or no body: the newest; loads it beside the
                           serving one, then switches (open streams move at their next
                           frame); 409 when it cannot be served (the current one goes on)
POST /v1/models/rollback   back to the version before

All three need the API key when keys are set (every tenant shares the served model).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends

from service.api.deps import ServedDep, VersionsDep, require_key
from service.api.responses import errors_doc, keyed
from service.settings import Settings


async def models(served: ServedDep, versions: VersionsDep) -> dict[str, Any]:
    return {"models": [served.describe()], "versions": versions.describe()}


async def reload(
    versions: VersionsDep, version: str | None = Body(None, embed=True)
) -> dict[str, Any]:
    served = await versions.reload(version)
    return {"serving": served.package.version, "versions": versions.describe()}


async def rollback(versions: VersionsDep) -> dict[str, Any]:
    served = await versions.rollback()
    return {"serving": served.package.version, "versions": versions.describe()}


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(dependencies=[Depends(require_key)])
    key = keyed(settings.auth_enabled)
    routes.add_api_route("/v1/models", models, methods=["GET"], responses=key)
    routes.add_api_route(
        "/v1/models/reload", reload, methods=["POST"], responses=key | errors_doc(400, 409)
    )
    routes.add_api_route(
        "/v1/models/rollback", rollback, methods=["POST"], responses=key | errors_doc(409)
    )
    return routes
