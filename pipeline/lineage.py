"""A record's lineage as plain data: its ancestors up to the root, the stage outcomes it led to, its
children and the LLM call that made it (what `safeset inspect` prints and `GET /v1/records/{id}`
answers)."""

from __future__ import annotations

from typing import Any

from pipeline.records import Record
from pipeline.store import Store

LINEAGE = (
    "stage",
    "run_id",
    "category",
    "tactic",
    "persona_id",
    "prompt_name",
    "prompt_version",
    "model",
    "seed",
    "request_key",
)


def lineage(store: Store, record: Record) -> dict[str, Any]:
    """The record with its ancestors (recursively), children, stage outcomes and the LLM call."""

    def describe(r: Record, depth: int) -> dict[str, Any]:
        node: dict[str, Any] = {"id": r.id, **{k: getattr(r, k) for k in LINEAGE}, "data": r.data}
        if depth < 32:
            node["parents"] = [describe(p, depth + 1) for pid in r.parent_ids if (p := store.get(pid))]
        return node

    out = describe(record, 0)
    out["children"] = [{"id": c.id, "stage": c.stage} for c in store.children(record.id)]
    out["outcomes"] = store.item_progress(record.id)
    if record.request_key:
        out["llm_call"] = store.cache_entry(record.request_key)
    return out
