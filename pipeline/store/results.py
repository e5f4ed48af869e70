"""Named queries on what runs conclude: eval metrics (`eval_results`), judge agreement with labels
(`judge_results`) and dataset scorecards (`scorecards`). Every save is one call and one transaction:
a run's rows are replaced together or not at all.

    store.save_eval_results(run_id, rows)              # after the eval run; computed in pipeline.eval
    store.eval_results(group_by="category")            # every eval run, a row per (target, set, group)
    store.latest_scorecards(run_id=run_id)             # the newest scorecard of each dataset of a run
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import duckdb
import pyarrow as pa

from pipeline import __version__
from pipeline.records import content_hash
from pipeline.store.rows import utc_now

EVAL_COLUMNS = ("target", "eval_set", "group_by", "group_value", "metric", "value", "n")


class ResultQueries:
    """Part of Store (see store.py): the connection and the one transaction path are Store's."""

    con: duckdb.DuckDBPyConnection
    transaction: Callable[[], AbstractContextManager[None]]
    _insert: Callable[[str, pa.Table, str], None]

    # ---- eval runs -----------------------------------------------------------------------------

    def eval_verdict_rows(self, run_id: str) -> list[tuple]:
        """Per prompt and target that was answered or failed (pending ones are left out), in commit
        order: (target model, target index, set, label, category, tactic, failed, refusal scores
        JSON, judge p̂, harm score, harmful)."""
        return self.con.execute(
            """
            SELECT p.data ->> '$.target_model', (p.data ->> '$.target')::INTEGER, p.data ->> '$.set',
                   p.data ->> '$.label', p.category, p.tactic, a.id IS NULL, r.data -> '$.refusal',
                   (j.data ->> '$.refusal_judge')::DOUBLE, (j.data ->> '$.harm_score')::INTEGER,
                   (j.data ->> '$.harmful')::BOOLEAN
            FROM records p
            LEFT JOIN records a ON a.run_id = p.run_id AND a.stage = 'eval_answers' AND a.parent_ids[1] = p.id
            LEFT JOIN progress f ON f.run_id = p.run_id AND f.stage = 'eval_answers' AND f.item_id = p.id
            LEFT JOIN records r ON r.run_id = p.run_id AND r.stage = 'eval_refusal' AND r.parent_ids[1] = a.id
            LEFT JOIN records j ON j.run_id = p.run_id AND j.stage = 'eval_judge' AND j.parent_ids[1] = a.id
            WHERE p.run_id = ? AND p.stage = 'eval_prompts' AND (a.id IS NOT NULL OR f.status = 'failed')
            ORDER BY p.seq
            """,
            [run_id],
        ).fetchall()

    def save_eval_results(self, run_id: str, rows: list[dict[str, Any]]) -> None:
        """Replace the eval run's metric rows (dicts of EVAL_COLUMNS) with `rows`, in one transaction."""
        now = utc_now()
        table = pa.Table.from_pylist(
            [{"eval_run": run_id, **{c: row[c] for c in EVAL_COLUMNS}, "created_at": now} for row in rows]
        )
        with self.transaction():
            self.con.execute("DELETE FROM eval_results WHERE eval_run = ?", [run_id])
            if rows:
                self._insert("eval_results", table, "")

    def eval_results(
        self, eval_run: str | None = None, group_by: str = "all", eval_set: str | None = None
    ) -> list[dict[str, Any]]:
        """Metric rows, one per (eval run, target, set, group), metrics as columns: what a table or plot
        of models side by side needs. Newest eval runs first."""
        rows = self.con.execute(
            """
            SELECT eval_run, target, eval_set, group_value, metric, value, n,
                   max(created_at) OVER (PARTITION BY eval_run) AS run_at
            FROM eval_results
            WHERE (? IS NULL OR eval_run = ?) AND group_by = ? AND (? IS NULL OR eval_set = ?)
            ORDER BY run_at DESC, eval_run, target, eval_set, group_value, metric
            """,
            [eval_run, eval_run, group_by, eval_set, eval_set],
        ).fetchall()
        table: dict[tuple, dict[str, Any]] = {}
        for run, target, set_name, group, metric, value, n, _ in rows:
            key = (run, target, set_name, group)
            entry = table.setdefault(
                key, {"eval_run": run, "target": target, "eval_set": set_name, "group": group}
            )
            entry[metric] = value
            entry["n"] = max(entry.get("n", 0), n)
        return list(table.values())

    # ---- judge validation ----------------------------------------------------------------------

    def judge_verdict_rows(self, run_id: str) -> list[tuple]:
        """Per labelled row of a judge run, in commit order: (judge, question, label, category,
        predicted or None when the judge gave no verdict, judged categories JSON)."""
        return self.con.execute(
            """
            SELECT i.data ->> '$.judge.name', i.data ->> '$.question', (i.data ->> '$.label')::BOOLEAN,
                   i.category, (v.data ->> '$.predicted')::BOOLEAN, v.data -> '$.categories'
            FROM records i
            LEFT JOIN records v ON v.run_id = i.run_id AND v.stage = 'judge_verdicts'
                                AND v.parent_ids[1] = i.id
            WHERE i.run_id = ? AND i.stage = 'judge_items'
            ORDER BY i.seq
            """,
            [run_id],
        ).fetchall()

    def save_judge_results(self, run_id: str, results: list[dict[str, Any]]) -> None:
        """Replace the judge run's results (dicts of `judge_results` columns) with `results`, in one
        transaction."""
        now = utc_now()
        with self.transaction():
            self.con.execute("DELETE FROM judge_results WHERE judge_run = ?", [run_id])
            for values in results:
                columns = ["judge_run", *values, "created_at"]
                self.con.execute(
                    f"INSERT INTO judge_results ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' * len(columns))})",
                    [run_id, *values.values(), now],
                )

    def judge_results(self, models: set[str] | None = None) -> list[dict[str, Any]]:
        """The latest result of each judge and model (of `models` only, if given), newest first."""
        rows = self.con.execute(
            """
            SELECT * FROM judge_results
            QUALIFY row_number() OVER (PARTITION BY judge, model ORDER BY created_at DESC) = 1
            ORDER BY created_at DESC, judge, model
            """
        ).fetchall()
        names = [d[0] for d in self.con.description]
        found = [dict(zip(names, row, strict=True)) for row in rows]
        return [r for r in found if models is None or r["model"] in models]

    # ---- scorecards ----------------------------------------------------------------------------

    def save_scorecards(self, cards: list[dict[str, Any]]) -> list[str]:
        """Store the scorecards (analysis.scorecard) together, in one transaction; returns their ids."""
        ids = []
        with self.transaction():
            for card in cards:
                created = utc_now()
                card_id = content_hash({"card": card, "at": created.isoformat()})
                self.con.execute(
                    "INSERT INTO scorecards VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        card_id,
                        card["dataset"],
                        card["run_id"],
                        card["n"],
                        json.dumps(card["settings"], sort_keys=True),
                        json.dumps(card, sort_keys=True),
                        __version__,
                        created,
                    ],
                )
                ids.append(card_id)
        return ids

    def latest_scorecards(
        self, run_id: str | None = None, dataset: str | None = None
    ) -> list[dict[str, Any]]:
        """The newest scorecard of each (dataset, run), optionally of one run or one dataset only."""
        rows = self.con.execute(
            """
            SELECT scorecard, created_at FROM scorecards
            WHERE (? IS NULL OR run_id = ?) AND (? IS NULL OR dataset = ?)
            QUALIFY row_number() OVER (PARTITION BY dataset, run_id ORDER BY created_at DESC) = 1
            ORDER BY created_at
            """,
            [run_id, run_id, dataset, dataset],
        ).fetchall()
        return [_scorecard(card, created) for card, created in rows]

    def scorecard_history(self, dataset: str) -> list[dict[str, Any]]:
        """Every scorecard of a dataset name (a stage over all runs, or one outside file), oldest first."""
        rows = self.con.execute(
            "SELECT scorecard, created_at FROM scorecards WHERE dataset = ? ORDER BY created_at", [dataset]
        ).fetchall()
        return [_scorecard(card, created) for card, created in rows]


def _scorecard(card: str, created: Any) -> dict[str, Any]:
    return {**json.loads(card), "created_at": created.isoformat(timespec="seconds")}
