"""What the API reads, each on a DuckDB cursor of its own (a connection to the server's database
instance), so reads see committed data and never wait behind a run's commits or mix with its
transactions. Quick queries share one reader thread; exports and reports get a thread each.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from pipeline.config import ConfigError
from pipeline.lineage import lineage
from pipeline.store import Store
from pipeline.store import serve_queue as queue
from pipeline.store.thread import StoreThread

T = TypeVar("T")
PAGE_MAX = 500


class Reader:
    def __init__(self, writer: StoreThread):
        self.writer = writer
        self.quick: StoreThread | None = None

    async def start(self) -> None:
        self.quick = await self.thread()
        # The status document's modules (every run kind's stages, coverage, refusal accounting) load
        # in about a second: at start, not in the first request.
        for module in ("pipeline.status", "pipeline.kinds", "pipeline.refusal_accounting"):
            await asyncio.to_thread(importlib.import_module, module)

    async def _cursor_store(self) -> Store:
        return await self.writer.call(lambda s: s.reader())

    async def thread(self) -> StoreThread:
        """A reader thread of its own (the caller shuts it down and closes its store)."""
        return StoreThread(await self._cursor_store())

    async def call(self, fn: Callable[[Store], T]) -> T:
        return await self.quick.call(fn)

    async def job(self, fn: Callable[[Store], T]) -> T:
        """`fn` on a thread and cursor of its own, for long work (an export, a report)."""
        store = await self._cursor_store()
        try:
            return await asyncio.to_thread(fn, store)
        finally:
            store.close()

    def close(self) -> None:
        if self.quick is not None:
            self.quick.shutdown()
            self.quick.store.close()


def find_run(store: Store, given: str) -> str | None:
    """The run id `given` names exactly or by a unique prefix, among submitted and stored runs."""
    ids = store.runs_starting_with(given)
    if given in ids:
        return given
    return ids[0] if len(ids) == 1 else None


def status_of(store: Store, run_id: str) -> dict[str, Any] | None:
    """`safeset status --json` of the run; None before its first start."""
    from pipeline.kinds import stages_of
    from pipeline.status import run_status

    if not store.has_run(run_id):
        return None
    return run_status(store, run_id, stages_of(store.run_config(run_id) or {}))


def run_document(store: Store, run_id: str) -> dict[str, Any]:
    """The run's status (`safeset status --json`; None before its first start), when it was computed,
    its queue state and its sessions."""
    status_at = datetime.now(UTC).isoformat(timespec="milliseconds")
    queued = queue.get_run(store, run_id)
    try:
        status, problem = status_of(store, run_id), None
    except ConfigError as exc:  # a stored config this version no longer reads (made by an older one)
        status, problem = None, str(exc)
    sessions = [{**s, "started_at": _iso(s["started_at"]), "ended_at": _iso(s["ended_at"])}
                for s in store.sessions(run_id)]  # fmt: skip
    return {
        "run": run_id,
        "queue": queued.public() if queued else None,
        "status_at": status_at,
        "status": status,
        "status_error": problem,
        "sessions": sessions,
    }


def run_list(store: Store) -> list[dict[str, Any]]:
    stored = {r["run_id"]: r for r in store.runs()}
    out = []
    for queued in queue.queued_runs(store):
        row = stored.pop(queued.run_id, None) or {}
        out.append({"run": queued.run_id, "name": row.get("name"), "records": row.get("records", 0),
                    "created_at": _iso(row.get("created_at")), "queue": queued.public()})  # fmt: skip
    for run_id, row in stored.items():  # made by `safeset run` before the server took the database
        out.append({"run": run_id, "name": row["name"], "records": row["records"],
                    "created_at": _iso(row["created_at"]), "queue": None})  # fmt: skip
    return out


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def progress(store: Store, run_id: str) -> dict[str, Any]:
    """A light progress document for the event stream: outcomes and records per stage."""
    queued = queue.get_run(store, run_id)
    return {
        "run": run_id,
        "state": queued.state if queued else None,
        "reason": queued.reason if queued else None,
        "progress": store.progress_counts(run_id),
        "records": store.output_counts(run_id),
    }


def records_page(
    store: Store, run_id: str, filters: dict[str, str | None], after: int, limit: int
) -> dict[str, Any]:
    """Records in commit order after the cursor `after` (a record's seq): new commits only ever come
    later, so paging is stable while a run writes."""
    rows = store.records_after(run_id, filters, after, limit + 1)
    items = rows[:limit]
    for item in items:
        item["created_at"] = item["created_at"].isoformat()
    more = len(rows) > limit
    return {"items": items, "next_cursor": str(items[-1]["seq"]) if more else None}


def record_lineage(store: Store, record_id: str) -> dict[str, Any] | None:
    """The record with its lineage chain, as `safeset inspect --json` shows it."""
    record = store.get(record_id)
    return lineage(store, record) if record is not None else None


def failures(store: Store, run_id: str, limit: int) -> dict[str, Any]:
    items = store.failed_items(run_id, limit)
    for item in items:
        item["updated_at"] = item["updated_at"].isoformat()
    return {"by_reason": store.failure_reasons(run_id), "items": items}


def scorecards(store: Store, run_id: str) -> list[dict[str, Any]]:

    return store.latest_scorecards(run_id=run_id)


def report_html(store: Store, run_id: str, semantic: bool) -> str:
    """The HTML report of `safeset report`: stored scorecards, the missing ones scored (and saved)."""
    from analysis.report import render
    from analysis.report_data import collect
    from analysis.scorecard import ScoreSettings
    from analysis.scoring import SourceOptions, dataset_stages, score_all

    settings = ScoreSettings(semantic=semantic)
    embed = None
    if semantic:
        from pipeline.embedder import Embedder

        embed = Embedder().encode
    cards = []
    for name in dataset_stages(store, run_id):
        stored = [c for c in store.latest_scorecards(run_id=run_id, dataset=name) if c["run_id"] == run_id]
        cards += stored or score_all([name], store, run_id, SourceOptions(), settings, embed)
    return render(collect(store, run_id, cards, []))
