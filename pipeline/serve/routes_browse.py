"""What the web UI reads and writes beyond the runs API: a run's datasets as filtered pages (paged and
filtered in DuckDB, `Store.browse_page`), and reviews by hand of one record (append-only)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from pipeline.datasets import DATASETS
from pipeline.serve.service import ServiceDep
from pipeline.store.reviews import ReviewError

router = APIRouter(prefix="/v1", tags=["browse"])
PAGE_MAX = 200
_VALUE = {"max_length": 128}


class ReviewBody(BaseModel):
    """POST /v1/records/{id}/reviews: a decision by a named reviewer; an edit carries the new texts."""

    model_config = ConfigDict(extra="forbid")
    reviewer: str = Field(min_length=1, max_length=64)
    decision: Literal["accept", "reject", "edit"]
    edits: dict[Literal["instruction", "response", "chosen"], str] | None = None
    note: str | None = Field(default=None, max_length=2000)


@router.get("/runs/{run_id}/datasets")
async def run_datasets(run_id: str, svc: ServiceDep) -> dict[str, Any]:
    """Rows per delivered dataset of the run (those with rows)."""
    found = await svc.run_id(run_id)
    counts = await svc.reader.call(lambda s: s.output_counts(found))
    return {"run": found, "datasets": {d: counts[d] for d in DATASETS if counts.get(d)}}


@router.get("/runs/{run_id}/datasets/{dataset}/rows")
async def dataset_rows(
    run_id: str,
    dataset: str,
    svc: ServiceDep,
    category: str | None = Query(None, **_VALUE, description="intended hazard category"),
    judged_category: str | None = Query(None, **_VALUE, description="the safety judge's category"),
    agreement: Literal["agree", "disagree", "unjudged"] | None = Query(None),
    tactic: str | None = Query(None, **_VALUE),
    persona_id: str | None = Query(None, **_VALUE),
    review: Literal["unreviewed", "accept", "reject", "edit"] | None = Query(None),
    q: str | None = Query(None, max_length=200, description="text anywhere in the record"),
    offset: int = Query(0, ge=0),
    limit: int = Query(50, ge=1, le=PAGE_MAX),
) -> dict[str, Any]:
    """A page of the dataset's rows in commit order under the filters, with `total` and `counts` per
    filter value over the filtered rows; each row with its latest review."""
    if dataset not in DATASETS:
        raise HTTPException(404, f"no dataset {dataset[:64]!r}; datasets: {', '.join(DATASETS)}")
    found = await svc.run_id(run_id)
    filters = {"category": category, "judged_category": judged_category, "agreement": agreement,
               "tactic": tactic, "persona_id": persona_id, "review": review, "q": q or None}  # fmt: skip
    page = await svc.reader.call(lambda s: s.browse_page(found, dataset, filters, offset, limit))
    return {"run": found, "dataset": dataset, "offset": offset, **page}


@router.get("/records/{record_id}/reviews")
async def record_reviews(record_id: str, svc: ServiceDep) -> dict[str, Any]:
    """Every review of the record, oldest first; the last one counts."""
    return {"record": record_id, "reviews": await svc.reader.call(lambda s: s.review_history(record_id))}


@router.post("/records/{record_id}/reviews", status_code=201)
async def add_review(record_id: str, body: ReviewBody, svc: ServiceDep) -> dict[str, Any]:
    """Append a review: accept, reject, or edit the instruction or the response (with the new text)."""
    try:
        return await svc.db.call(
            lambda s: s.add_review(record_id, reviewer=body.reviewer, decision=body.decision,
                                   edits=body.edits, note=body.note)
        )  # fmt: skip
    except ReviewError as exc:
        status = 404 if str(exc).startswith("no record") else 422
        raise HTTPException(status, str(exc)) from None
