"""Eval results in DuckDB: verdicts read from an eval run's records, metrics written to `eval_results`,
and read back as rows for tables, reports and plots.

    rows = eval_results(store)                        # every eval run, all prompts per target and set
    rows = eval_results(store, group_by="category")   # per category: bars per model
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from pipeline.eval.metrics import MetricRow, Verdict, compute_metrics
from pipeline.store import Store


def verdicts(store: Store, run_id: str) -> list[Verdict]:
    """One verdict per prompt and target that was answered or failed (pending ones are left out)."""
    rows = store.con.execute(
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
    indexes = Counter(model for model, _ in {(m, i) for m, i, *_ in rows})
    out = []
    for model, index, set_name, label, category, tactic, failed, refusal, judge, score, harmful in rows:
        scores = json.loads(refusal) if refusal else {}
        if judge is not None:
            scores["judge"] = judge
        target = model if indexes[model] == 1 else f"{model}#{index}"  # the same model served twice
        out.append(Verdict(target, set_name, label, category, tactic, failed, scores, score, harmful))
    return out


def save(store: Store, run_id: str, rows: list[MetricRow]) -> None:
    """Replace the run's results with `rows`, in one transaction."""
    now = datetime.now(UTC).replace(tzinfo=None)
    table = pa.Table.from_pylist(
        [
            {
                "eval_run": run_id,
                "target": r.target,
                "eval_set": r.set,
                "group_by": r.grouping,
                "group_value": r.group,
                "metric": r.metric,
                "value": r.value,
                "n": r.n,
                "created_at": now,
            }  # fmt: skip
            for r in rows
        ]
    )
    store.con.execute("BEGIN TRANSACTION")
    try:
        store.con.execute("DELETE FROM eval_results WHERE eval_run = ?", [run_id])
        if rows:
            store.con.register("_results", table)
            store.con.execute("INSERT INTO eval_results SELECT * FROM _results")
            store.con.unregister("_results")
        store.con.execute("COMMIT")
    except BaseException:
        store.con.execute("ROLLBACK")
        raise


def score_run(store: Store, run_id: str) -> list[MetricRow]:
    rows = compute_metrics(verdicts(store, run_id))
    save(store, run_id, rows)
    return rows


def eval_results(
    store: Store, eval_run: str | None = None, group_by: str = "all", eval_set: str | None = None
) -> list[dict[str, Any]]:
    """Metric rows, one per (eval run, target, set, group), metrics as columns: what a table or plot of
    models side by side needs. Newest eval runs first."""
    rows = store.con.execute(
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
