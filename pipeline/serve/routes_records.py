"""Records of a run (filtered, paged by a cursor), one record with its lineage, failures,
scorecards and the HTML report."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse

from pipeline.serve import reads
from pipeline.serve.service import ServiceDep
from pipeline.store import StoreError

router = APIRouter(prefix="/v1", tags=["records"])


@router.get("/runs/{run_id}/records")
async def run_records(
    run_id: str,
    svc: ServiceDep,
    dataset: str | None = Query(None, max_length=64, description="a stage: core, edge, personas..."),
    category: str | None = Query(None, max_length=64, description="hazard category, e.g. S1"),
    tactic: str | None = Query(None, max_length=64),
    verdict: str | None = Query(None, max_length=32, description="a judge's verdict, e.g. safe, unsafe"),
    q: str | None = Query(None, max_length=200, description="text anywhere in the record's data"),
    cursor: str | None = Query(None, pattern=r"^[0-9]{1,18}$", description="next_cursor of the last page"),
    limit: int = Query(100, ge=1, le=reads.PAGE_MAX),
) -> dict[str, Any]:
    """Records in commit order; `next_cursor` pages on (stable while the run writes: new records
    only ever come after it)."""
    found = await svc.run_id(run_id)
    filters = {"dataset": dataset, "category": category, "tactic": tactic, "verdict": verdict, "q": q}
    after = int(cursor) if cursor else 0
    return await svc.reader.call(lambda s: reads.records_page(s, found, filters, after, limit))


@router.get("/records/{record_id}")
async def record(record_id: str, svc: ServiceDep) -> dict[str, Any]:
    """One record (by id or unique prefix) with its lineage chain, as `safeset inspect --json`."""
    if not record_id.isalnum() or len(record_id) > 128:
        raise HTTPException(404, "no such record")
    try:
        found = await svc.reader.call(lambda s: reads.record_lineage(s, record_id))
    except StoreError as exc:
        raise HTTPException(409, str(exc)) from None
    if found is None:
        raise HTTPException(404, f"no record with id {record_id!r}")
    return found


@router.get("/runs/{run_id}/failures")
async def run_failures(
    run_id: str, svc: ServiceDep, limit: int = Query(100, ge=1, le=reads.PAGE_MAX)
) -> dict[str, Any]:
    """Failed items with their reasons, and counts per stage and reason."""
    found = await svc.run_id(run_id)
    return await svc.reader.call(lambda s: reads.failures(s, found, limit))


@router.get("/runs/{run_id}/scorecards")
async def run_scorecards(run_id: str, svc: ServiceDep) -> dict[str, Any]:
    """The newest scorecard of each of the run's datasets (`safeset score`, or a report, makes them)."""
    found = await svc.run_id(run_id)
    return {"run": found, "scorecards": await svc.reader.call(lambda s: reads.scorecards(s, found))}


@router.get("/runs/{run_id}/report", response_class=HTMLResponse)
async def run_report(
    run_id: str,
    svc: ServiceDep,
    semantic: bool = Query(True, description="embedding metrics (loads the sentence embedder)"),
) -> HTMLResponse:
    """The HTML report of `safeset report`; datasets without a scorecard are scored first."""
    found = await svc.run_id(run_id)
    try:
        html = await svc.reader.job(lambda s: reads.report_html(s, found, semantic))
    except (StoreError, ValueError) as exc:
        raise HTTPException(409, str(exc)) from None
    return HTMLResponse(html)
