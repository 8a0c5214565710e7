"""Training a new version from the caller's examples (service/jobs.py; docs/teach.md).

POST /v1/train          start a job on the caller's examples for the served model: 202 and
                        the job; 409 when one runs (one at a time) or this install cannot
                        train; 422 when there is no example of an action to learn
GET  /v1/jobs           the caller's jobs
GET  /v1/jobs/{job_id}  one: status (queued, running, succeeded, failed), stage, progress,
                        the last progress lines, and the result (version, held-out accuracy
                        of the new actions, the old classes' mAP before and after, served)
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection

from service.api.deps import ServedDep, SettingsDep, TenantDep
from service.api.responses import errors_doc, keyed
from service.errors import UnusableInput
from service.examples.capture import example_set
from service.jobs import Jobs
from service.settings import Settings


def get_jobs(connection: HTTPConnection) -> Jobs:
    jobs: Jobs = connection.app.state.jobs
    return jobs


JobsDep = Annotated[Jobs, Depends(get_jobs)]


async def train(
    served: ServedDep, settings: SettingsDep, jobs: JobsDep, tenant: TenantDep
) -> JSONResponse:
    examples = example_set(served, settings, tenant)
    summary = examples.summary()
    actions = [name for name in summary.get("labels", {}) if name != examples.background]
    if not actions:
        raise UnusableInput(
            "no examples of an action to learn: record some first (POST /v1/examples, the "
            "page's Teach, or `gad teach add`)"
        )
    job = jobs.start(tenant, examples.root)
    return JSONResponse(job.to_json(), status_code=202)


async def list_jobs(jobs: JobsDep, tenant: TenantDep) -> dict[str, Any]:
    return {"jobs": [job.to_json() for job in jobs.of(tenant)]}


async def get_job(job_id: str, jobs: JobsDep, tenant: TenantDep) -> dict[str, Any]:
    return jobs.get(job_id, tenant).to_json()


def router(settings: Settings) -> APIRouter:
    routes = APIRouter()
    key = keyed(settings.auth_enabled)
    routes.add_api_route(
        "/v1/train",
        train,
        methods=["POST"],
        status_code=202,
        responses=key | errors_doc(400, 409, 422),
    )
    routes.add_api_route("/v1/jobs", list_jobs, methods=["GET"], responses=key)
    routes.add_api_route(
        "/v1/jobs/{job_id}", get_job, methods=["GET"], responses=key | errors_doc(404)
    )
    return routes
