"""Named queries that `safeset serve` answers its API with: runs by id or prefix, a run's sessions, a
page of its records after a cursor, and its failed items."""

from __future__ import annotations

import json
from typing import Any

import duckdb

RECORD_COLUMNS = ("seq", "id", "stage", "parent_ids", "persona_id", "category", "tactic", "prompt_name",
                  "prompt_version", "model", "seed", "data", "created_at")  # fmt: skip
FAILURE_COLUMNS = ("stage", "item_id", "reason", "attempts", "updated_at")


class ServeQueries:
    """Part of Store (see store.py)."""

    con: duckdb.DuckDBPyConnection

    def has_run(self, run_id: str) -> bool:
        return bool(self.con.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchone())

    def runs_starting_with(self, prefix: str) -> list[str]:
        """Ids of the submitted and stored runs that start with `prefix`, sorted."""
        rows = self.con.execute(
            "SELECT run_id FROM (SELECT run_id FROM serve_runs UNION SELECT run_id FROM runs) "
            "WHERE starts_with(run_id, ?) ORDER BY run_id",
            [prefix],
        ).fetchall()
        return [run_id for (run_id,) in rows]

    def sessions(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.con.execute(
            "SELECT session, started_at, ended_at, status FROM sessions WHERE run_id = ? ORDER BY session",
            [run_id],
        ).fetchall()
        return [dict(zip(("session", "started_at", "ended_at", "status"), r, strict=True)) for r in rows]

    def records_after(
        self, run_id: str, filters: dict[str, str | None], after: int, limit: int
    ) -> list[dict[str, Any]]:
        """Up to `limit` records of the run with seq > `after`, in commit order, that pass `filters`
        (dataset = stage, category, tactic, verdict, q = text anywhere in the data, case-blind)."""
        text = filters.get("q")
        rows = self.con.execute(
            f"""
            SELECT {", ".join(RECORD_COLUMNS)}
            FROM records
            WHERE run_id = ? AND seq > ?
              AND (?::VARCHAR IS NULL OR stage = ?) AND (?::VARCHAR IS NULL OR category = ?)
              AND (?::VARCHAR IS NULL OR tactic = ?)
              AND (?::VARCHAR IS NULL OR json_extract_string(data, '$.verdict') = ?)
              AND (?::VARCHAR IS NULL OR contains(lower(CAST(data AS VARCHAR)), lower(?)))
            ORDER BY seq LIMIT ?
            """,
            [run_id, after,
             filters.get("dataset"), filters.get("dataset"), filters.get("category"), filters.get("category"),
             filters.get("tactic"), filters.get("tactic"), filters.get("verdict"), filters.get("verdict"),
             text, text, limit],
        ).fetchall()  # fmt: skip
        items = [dict(zip(RECORD_COLUMNS, row, strict=True)) for row in rows]
        for item in items:
            item["data"] = json.loads(item["data"])
        return items

    def failed_items(self, run_id: str, limit: int) -> list[dict[str, Any]]:
        rows = self.con.execute(
            f"SELECT {', '.join(FAILURE_COLUMNS)} FROM failures WHERE run_id = ? "
            "ORDER BY stage, item_id LIMIT ?",
            [run_id, limit],
        ).fetchall()
        return [dict(zip(FAILURE_COLUMNS, r, strict=True)) for r in rows]
