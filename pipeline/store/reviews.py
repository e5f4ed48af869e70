"""Named queries on reviews by hand (`reviews`, migration 006): append-only rows, the latest of a record
counting. Export reads them through `reviewed_source` (rejected rows left out, edits applied); the
dataset card through `review_counts` and `reviewer_decisions`.

    store.add_review(record_id, reviewer="ana", decision="edit", edits={"response": "..."}, note="tone")
    store.latest_review(record_id)     # the decision that counts, or None
    store.review_history(record_id)    # every review of the record, oldest first
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import duckdb

from pipeline.store.rows import utc_now

DECISIONS = ("accept", "reject", "edit")
EDITABLE = ("instruction", "response", "chosen")  # chosen: the helpful answer of overrefusal_align
REVIEW_COLUMNS = ("review_id", "record_id", "run_id", "reviewer", "decision", "edits", "note", "created_at")

# The latest review of each record (over all reviewers): the decision export and the browser use.
LATEST = (
    "(SELECT * FROM reviews QUALIFY row_number() OVER (PARTITION BY record_id ORDER BY review_id DESC) = 1)"
)


def reviewed_source(reviewed_only: bool) -> str:
    """SQL of a run's records of one stage (parameters: run id, stage) as export reads them: records
    rejected by their latest review left out, the edits of the latest review applied to `data`, and
    with `reviewed_only` the records nobody reviewed left out too."""
    unreviewed = "AND v.decision IS NOT NULL" if reviewed_only else ""
    return (
        "(SELECT r.* REPLACE (CASE WHEN v.edits IS NULL THEN r.data "
        "ELSE json_merge_patch(r.data, v.edits) END AS data) "
        f"FROM records r LEFT JOIN {LATEST} v ON v.record_id = r.id "
        f"WHERE r.run_id = ? AND r.stage = ? AND coalesce(v.decision, '') <> 'reject' {unreviewed})"
    )


class ReviewError(ValueError):
    """A review the store refuses; the message says why."""


class ReviewQueries:
    """Part of Store (see store.py)."""

    con: duckdb.DuckDBPyConnection
    transaction: Callable[[], AbstractContextManager[None]]

    def add_review(
        self,
        record_id: str,
        *,
        reviewer: str,
        decision: str,
        edits: dict[str, str] | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        """Append a review of a record and return it. An edit names at least one field of EDITABLE the
        record has; accept and reject carry no edits."""
        if decision not in DECISIONS:
            raise ReviewError(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
        if not reviewer.strip():
            raise ReviewError("a review needs a reviewer's name")
        edits = edits or None
        if (decision == "edit") != bool(edits):
            raise ReviewError("an edit changes at least one field; accept and reject change none")
        with self.transaction():
            row = self.con.execute("SELECT run_id, data FROM records WHERE id = ?", [record_id]).fetchone()
            if row is None:
                raise ReviewError(f"no record {record_id}")
            if edits:
                data = json.loads(row[1])
                wrong = [k for k in edits if k not in EDITABLE or k not in data or not str(edits[k]).strip()]
                if wrong:
                    can = ", ".join(k for k in EDITABLE if k in data)
                    raise ReviewError(
                        f"cannot edit {', '.join(wrong)} of this record (editable, not empty: {can})"
                    )
            review_id = self.con.execute("SELECT coalesce(max(review_id), 0) + 1 FROM reviews").fetchone()[0]
            self.con.execute(
                "INSERT INTO reviews VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [review_id, record_id, row[0], reviewer.strip(), decision,
                 json.dumps(edits) if edits else None, note or None, utc_now()],
            )  # fmt: skip
        return self.review_history(record_id)[-1]

    def review_history(self, record_id: str) -> list[dict[str, Any]]:
        rows = self.con.execute(
            f"SELECT {', '.join(REVIEW_COLUMNS)} FROM reviews WHERE record_id = ? ORDER BY review_id",
            [record_id],
        ).fetchall()
        return [_review(row) for row in rows]

    def latest_review(self, record_id: str) -> dict[str, Any] | None:
        history = self.review_history(record_id)
        return history[-1] if history else None

    def review_counts(self, run_id: str, dataset: str) -> list[tuple[str, str, int]]:
        """(intended category or '-', latest decision or 'unreviewed', records) of a dataset."""
        return self.con.execute(
            f"SELECT coalesce(r.category, '-'), coalesce(v.decision, 'unreviewed'), count(*) "
            f"FROM records r LEFT JOIN {LATEST} v ON v.record_id = r.id "
            "WHERE r.run_id = ? AND r.stage = ? GROUP BY ALL ORDER BY ALL",
            [run_id, dataset],
        ).fetchall()

    def reviewer_decisions(self, run_id: str) -> list[tuple[str, str, str]]:
        """(record id, reviewer, that reviewer's latest decision) of the run's records that two or more
        reviewers reviewed, by record and reviewer."""
        return self.con.execute(
            """
            SELECT record_id, reviewer, decision FROM reviews WHERE run_id = ?
            QUALIFY row_number() OVER (PARTITION BY record_id, reviewer ORDER BY review_id DESC) = 1
                AND count(DISTINCT reviewer) OVER (PARTITION BY record_id) >= 2
            ORDER BY record_id, reviewer
            """,
            [run_id],
        ).fetchall()


def _review(row: tuple) -> dict[str, Any]:
    review = dict(zip(REVIEW_COLUMNS, row, strict=True))
    review["edits"] = json.loads(review["edits"]) if review["edits"] else None
    review["created_at"] = review["created_at"].isoformat()
    return review
