"""Eval results: verdicts read from an eval run's records, and the metrics over them saved to the
store's `eval_results` (read back with `store.eval_results()` for tables, reports and plots).

    rows = score_run(store, run_id)                   # compute and save the run's metrics
"""

from __future__ import annotations

import json
from collections import Counter

from pipeline.eval.metrics import MetricRow, Verdict, compute_metrics
from pipeline.store import Store


def verdicts(store: Store, run_id: str) -> list[Verdict]:
    """One verdict per prompt and target that was answered or failed (pending ones are left out)."""
    rows = store.eval_verdict_rows(run_id)
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
    store.save_eval_results(
        run_id,
        [
            {
                "target": r.target,
                "eval_set": r.set,
                "group_by": r.grouping,
                "group_value": r.group,
                "metric": r.metric,
                "value": r.value,
                "n": r.n,
            }
            for r in rows
        ],
    )


def score_run(store: Store, run_id: str) -> list[MetricRow]:
    rows = compute_metrics(verdicts(store, run_id))
    save(store, run_id, rows)
    return rows
