"""The server's durable queue (`safeset serve`): submitted runs and export jobs, as rows of the
database the runs write to (migration 005), so a restarted server resumes what it was driving.

A run moves queued -> running -> finished | stopped | failed; stop, resume and retry move it again.
Every function takes the server's Store and runs on its store thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.store.store import Store

RUN_STATES = ("queued", "running", "finished", "stopped", "failed")
ACTIVE = ("queued", "running")
_RUN_COLUMNS = ("run_id", "state", "config", "overrides", "max_items", "retry_failed", "reason",
                "submitted_at", "updated_at")  # fmt: skip
_EXPORT_COLUMNS = ("job_id", "run_id", "state", "options", "reason", "manifest", "hub_url", "created_at",
                   "updated_at")  # fmt: skip


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class QueuedRun:
    run_id: str
    state: str
    config: str
    overrides: dict[str, Any]
    max_items: int | None
    retry_failed: bool
    reason: str | None
    submitted_at: datetime
    updated_at: datetime

    def public(self) -> dict[str, Any]:
        """The queue state as the API shows it (the config text is left out)."""
        return {
            "state": self.state,
            "reason": self.reason,
            "max_items": self.max_items,
            "retry_failed": self.retry_failed,
            "overrides": self.overrides,
            "submitted_at": self.submitted_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def _run(row: tuple) -> QueuedRun:
    values = dict(zip(_RUN_COLUMNS, row, strict=True))
    values["overrides"] = json.loads(values["overrides"])
    return QueuedRun(**values)


def submit_run(
    store: Store, run_id: str, config: str, overrides: dict[str, Any], max_items: int | None, retry: bool
) -> tuple[QueuedRun, bool]:
    """Queue the run; returns it and whether it was queued now (False: it is queued or running
    already, and stays as it was)."""
    with store.transaction():
        found = get_run(store, run_id)
        if found is not None and found.state in ACTIVE:
            return found, False
        now = _now()
        store.con.execute(
            "INSERT INTO serve_runs VALUES (?, 'queued', ?, ?, ?, ?, NULL, ?, ?) ON CONFLICT DO UPDATE SET "
            "state = 'queued', config = excluded.config, overrides = excluded.overrides, "
            "max_items = excluded.max_items, retry_failed = excluded.retry_failed, reason = NULL, "
            "updated_at = excluded.updated_at",
            [run_id, config, json.dumps(overrides, sort_keys=True), max_items, retry, now, now],
        )
    return get_run(store, run_id), True


def get_run(store: Store, run_id: str) -> QueuedRun | None:
    row = store.con.execute(
        f"SELECT {', '.join(_RUN_COLUMNS)} FROM serve_runs WHERE run_id = ?", [run_id]
    ).fetchone()
    return _run(row) if row else None


def queued_runs(store: Store) -> list[QueuedRun]:
    rows = store.con.execute(
        f"SELECT {', '.join(_RUN_COLUMNS)} FROM serve_runs ORDER BY submitted_at, run_id"
    ).fetchall()
    return [_run(row) for row in rows]


def next_queued(store: Store, skip: set[str]) -> QueuedRun | None:
    """The longest-waiting queued run not in `skip` (runs this server is driving already)."""
    rows = store.con.execute(
        f"SELECT {', '.join(_RUN_COLUMNS)} FROM serve_runs WHERE state = 'queued' ORDER BY updated_at, run_id"
    ).fetchall()
    return next((run for run in map(_run, rows) if run.run_id not in skip), None)


def set_run_state(
    store: Store, run_id: str, state: str, reason: str | None = None, *, retry_failed: bool | None = None
) -> None:
    assert state in RUN_STATES, state
    store.con.execute(
        "UPDATE serve_runs SET state = ?, reason = ?, updated_at = ?, "
        "retry_failed = coalesce(?, retry_failed) WHERE run_id = ?",
        [state, reason, _now(), retry_failed, run_id],
    )


def requeue_interrupted(store: Store) -> list[str]:
    """Runs left `running` by a server that was killed go back to the queue, first in line."""
    rows = store.con.execute("SELECT run_id FROM serve_runs WHERE state = 'running'").fetchall()
    # updated_at stays the time they started, so they come before what was queued after them
    store.con.execute(
        "UPDATE serve_runs SET state = 'queued', reason = 'resumed after a server restart' "
        "WHERE state = 'running'"
    )
    return [run_id for (run_id,) in rows]


# ---- export jobs ---------------------------------------------------------------------------------


def create_export(store: Store, job_id: str, run_id: str, options: dict[str, Any]) -> None:
    now = _now()
    store.con.execute(
        "INSERT INTO serve_exports VALUES (?, ?, 'queued', ?, NULL, NULL, NULL, ?, ?)",
        [job_id, run_id, json.dumps(options, sort_keys=True), now, now],
    )


def get_export(store: Store, job_id: str) -> dict[str, Any] | None:
    row = store.con.execute(
        f"SELECT {', '.join(_EXPORT_COLUMNS)} FROM serve_exports WHERE job_id = ?", [job_id]
    ).fetchone()
    if row is None:
        return None
    job = dict(zip(_EXPORT_COLUMNS, row, strict=True))
    job["options"] = json.loads(job["options"])
    job["manifest"] = json.loads(job["manifest"]) if job["manifest"] else None
    for key in ("created_at", "updated_at"):
        job[key] = job[key].isoformat()
    return job


def set_export(
    store: Store,
    job_id: str,
    state: str,
    *,
    reason: str | None = None,
    manifest: dict[str, Any] | None = None,
    hub_url: str | None = None,
) -> None:
    store.con.execute(
        "UPDATE serve_exports SET state = ?, reason = ?, manifest = ?, hub_url = ?, updated_at = ? "
        "WHERE job_id = ?",
        [state, reason, json.dumps(manifest) if manifest is not None else None, hub_url, _now(), job_id],
    )


def fail_unfinished_exports(store: Store) -> None:
    """Export jobs a killed server left unfinished (their staging folders are gone with it)."""
    store.con.execute(
        "UPDATE serve_exports SET state = 'failed', reason = 'the server stopped during the export; "
        "start it again', updated_at = ? WHERE state IN ('queued', 'running')",
        [_now()],
    )
