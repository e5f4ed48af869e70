"""Runs: submit, list, status, progress events, stop, resume, retry."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse, Response, StreamingResponse

from pipeline.config import ConfigError
from pipeline.serve import reads, submit
from pipeline.serve.service import ServiceDep
from pipeline.serve.sse import progress_events
from pipeline.serve.submit import Submission
from pipeline.store import serve_queue as queue

router = APIRouter(prefix="/v1", tags=["runs"])


@router.post("/runs", status_code=202, responses={200: {"description": "already queued or running"},
             422: {"description": "invalid config: `problems` lists each with its field path"}})  # fmt: skip
async def submit_run(body: Submission, svc: ServiceDep) -> JSONResponse:
    """Queue a run of a config (YAML text or a JSON object), with the overrides of `safeset run`.
    The same config and seed again resumes the run (or answers 200 while it is queued or running)."""
    text = body.text()
    try:
        plan = await asyncio.to_thread(submit.accept, svc.settings, text, body.overrides())
    except ConfigError as exc:
        return JSONResponse({"error": "invalid config", "problems": exc.problems}, status_code=422)
    run_id = plan.run_id
    queued, new = await svc.db.call(
        lambda s: queue.submit_run(s, run_id, text, body.overrides(), body.max_items, body.retry_failed)
    )
    svc.workers.wake()
    svc.changes.notify(run_id)
    return JSONResponse(
        {"run": run_id, "queued": new, "queue": queued.public()}, status_code=202 if new else 200
    )


@router.get("/runs")
async def list_runs(svc: ServiceDep) -> dict[str, Any]:
    """Every run of the database: submitted ones with their queue state, and runs made by the CLI."""
    return {"runs": await svc.reader.call(reads.run_list)}


@router.get("/runs/{run_id}")
async def get_run(run_id: str, svc: ServiceDep) -> Response:
    """`status`: the document of `safeset status --json` (null before the run first starts),
    `queue`: its state in the server's queue (null for a run made by the CLI), and `sessions`: each
    time it was started, when, and how it ended. While the run runs, `status` is its live status,
    refreshed every 2 s; `status_at` says when it was computed."""
    document = svc.live.get(run_id)  # a running run named exactly: no query at all
    if document is None:
        found = await svc.run_id(run_id)
        document = await svc.reader.call(lambda s: reads.run_document(s, found))
    # Encoded as it is (plain JSON data): FastAPI's generic encoder walks the whole document first.
    return Response(json.dumps(document, default=str), media_type="application/json")


@router.get("/runs/{run_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})  # fmt: skip
async def run_events(run_id: str, svc: ServiceDep) -> StreamingResponse:
    """Server-Sent Events: `progress` whenever the run commits or changes state, `end` when it is done."""
    found = await svc.run_id(run_id)
    return StreamingResponse(
        progress_events(svc, found),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post("/runs/{run_id}/stop")
async def stop_run(run_id: str, svc: ServiceDep) -> dict[str, Any]:
    """Stop at a transaction boundary (a queued run leaves the queue); resume continues it."""
    found = await svc.run_id(run_id)
    queued = await _queued(svc, found)
    if svc.workers.stop(found):
        return {"run": found, "stopping": True}
    if queued.state == "queued":
        await svc.db.call(lambda s: queue.set_run_state(s, found, "stopped", "stopped before it started"))
        svc.changes.notify(found)
        return {"run": found, "stopping": True}
    raise HTTPException(409, f"run {found} is {queued.state}, not queued or running")


@router.post("/runs/{run_id}/resume", status_code=202)
async def resume_run(run_id: str, svc: ServiceDep) -> dict[str, Any]:
    """Queue a stopped, failed or finished run again: it continues where it stopped."""
    return await _requeue(svc, run_id, retry_failed=False)


@router.post("/runs/{run_id}/retry", status_code=202)
async def retry_run(run_id: str, svc: ServiceDep) -> dict[str, Any]:
    """Queue the run again with its failed items retried (`safeset run --retry-failed`)."""
    return await _requeue(svc, run_id, retry_failed=True)


async def _queued(svc: ServiceDep, run_id: str) -> queue.QueuedRun:
    queued = await svc.reader.call(lambda s: queue.get_run(s, run_id))
    if queued is None:
        raise HTTPException(409, f"run {run_id} was made by `safeset run`, not submitted; POST its config "
                            "to /v1/runs to drive it here")  # fmt: skip
    return queued


async def _requeue(svc: ServiceDep, given: str, retry_failed: bool) -> dict[str, Any]:
    run_id = await svc.run_id(given)
    queued = await _queued(svc, run_id)
    if queued.state in queue.ACTIVE or run_id in svc.workers.active:
        raise HTTPException(409, f"run {run_id} is {queued.state} already")
    await svc.db.call(lambda s: queue.set_run_state(s, run_id, "queued", retry_failed=retry_failed))
    svc.workers.wake()
    svc.changes.notify(run_id)
    return {"run": run_id, "queued": True, "retry_failed": retry_failed}
