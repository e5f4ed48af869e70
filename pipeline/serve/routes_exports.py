"""Export jobs: start one, follow it, download its archive."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse

from pipeline.serve.exports import ExportOptions
from pipeline.serve.service import ServiceDep
from pipeline.store import serve_queue as queue

router = APIRouter(prefix="/v1", tags=["exports"])


@router.post("/runs/{run_id}/exports", status_code=202)
async def start_export(run_id: str, svc: ServiceDep, options: ExportOptions | None = None) -> dict[str, Any]:
    """Export the run (the formats and options of `safeset export`) as a job; GET /v1/exports/{job}
    follows it. `push_to_hub` uploads with the server's HF_TOKEN."""
    found = await svc.run_id(run_id)
    return _shown(await svc.exports.create(found, options or ExportOptions()))


@router.get("/exports/{job_id}")
async def get_export(job_id: str, svc: ServiceDep) -> dict[str, Any]:
    return _shown(await _job(svc, job_id))


@router.get("/exports/{job_id}/download", response_class=FileResponse,
            responses={200: {"content": {"application/zip": {}, "application/gzip": {}}}})  # fmt: skip
async def download_export(
    job_id: str, svc: ServiceDep, archive: Literal["zip", "tar.gz"] = Query("zip")
) -> FileResponse:
    """The finished export as one archive (zip or tar.gz)."""
    job = await _job(svc, job_id)
    if job["state"] != "finished":
        raise HTTPException(
            409, f"export {job_id} is {job['state']}" + (f": {job['reason']}" if job["reason"] else "")
        )
    path = await svc.exports.archive(job["job_id"], archive)
    media = "application/zip" if archive == "zip" else "application/gzip"
    return FileResponse(path, media_type=media, filename=path.name)


async def _job(svc: ServiceDep, job_id: str) -> dict[str, Any]:
    try:
        svc.exports.folder(job_id)  # the shape of a job id, before anything is looked up
    except ValueError:
        raise HTTPException(404, "no such export job") from None
    job = await svc.reader.call(lambda s: queue.get_export(s, job_id))
    if job is None:
        raise HTTPException(404, "no such export job")
    return job


def _shown(job: dict[str, Any]) -> dict[str, Any]:
    job = dict(job)
    if job["state"] == "finished":
        job["download"] = {
            kind: f"/v1/exports/{job['job_id']}/download?archive={kind}" for kind in ("zip", "tar.gz")
        }
    return job
