"""Judge validation results: verdicts read from a judge run's records, agreement with the labels per
judge and model written to `judge_results`, and read back for the report and the dataset card.

    rows = judge_results(store)            # the latest result of each judge and model
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.store import Store

METRICS = ("agreement", "precision", "recall", "f1", "category_agreement")


@dataclass
class JudgeResult:
    judge: str
    model: str
    question: str
    labels: str
    n: int = 0
    failed: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    agreement: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    category_agreement: float | None = None


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def compute(store: Store, run_id: str, model: str, files: dict[str, str]) -> list[JudgeResult]:
    """One result per judge of the run (the judge role's `model`): every labelled row counts, a row
    without a verdict as failed."""
    rows = store.con.execute(
        """
        SELECT i.data ->> '$.judge.name', i.data ->> '$.question', (i.data ->> '$.label')::BOOLEAN,
               i.category, (v.data ->> '$.predicted')::BOOLEAN, v.data -> '$.categories'
        FROM records i
        LEFT JOIN records v ON v.run_id = i.run_id AND v.stage = 'judge_verdicts' AND v.parent_ids[1] = i.id
        WHERE i.run_id = ? AND i.stage = 'judge_items'
        ORDER BY i.seq
        """,
        [run_id],
    ).fetchall()
    results: dict[str, JudgeResult] = {}
    categories: dict[str, list[bool]] = {}
    cells = {(True, True): "tp", (False, True): "fp", (True, False): "fn", (False, False): "tn"}
    for judge, question, label, category, predicted, judged in rows:
        result = results.setdefault(judge, JudgeResult(judge, model, question, files[question]))
        result.n += 1
        if predicted is None:
            result.failed += 1
            continue
        cell = cells[(label, predicted)]
        setattr(result, cell, getattr(result, cell) + 1)
        if label and predicted and category and judged is not None:
            categories.setdefault(judge, []).append(category in json.loads(judged))
    for judge, result in results.items():
        result.agreement = _ratio(result.tp + result.tn, result.n - result.failed)
        result.precision = _ratio(result.tp, result.tp + result.fp)
        result.recall = _ratio(result.tp, result.tp + result.fn)
        if result.precision is not None and result.recall is not None:
            result.f1 = _ratio(2 * result.tp, 2 * result.tp + result.fp + result.fn)
        hits = categories.get(judge)
        result.category_agreement = sum(hits) / len(hits) if hits else None
    return list(results.values())


def save(store: Store, run_id: str, results: list[JudgeResult]) -> None:
    """Replace the run's results with `results`, in one transaction."""
    now = datetime.now(UTC).replace(tzinfo=None)
    store.con.execute("BEGIN TRANSACTION")
    try:
        store.con.execute("DELETE FROM judge_results WHERE judge_run = ?", [run_id])
        for r in results:
            values = asdict(r)
            columns = ["judge_run", *values, "created_at"]
            store.con.execute(
                f"INSERT INTO judge_results ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                [run_id, *values.values(), now],
            )
        store.con.execute("COMMIT")
    except BaseException:
        store.con.execute("ROLLBACK")
        raise


def judge_results(store: Store, models: set[str] | None = None) -> list[dict[str, Any]]:
    """The latest result of each judge and model (of `models` only, if given), newest first."""
    rows = store.con.execute(
        """
        SELECT * FROM judge_results
        QUALIFY row_number() OVER (PARTITION BY judge, model ORDER BY created_at DESC) = 1
        ORDER BY created_at DESC, judge, model
        """
    ).fetchall()
    names = [d[0] for d in store.con.description]
    found = [dict(zip(names, row, strict=True)) for row in rows]
    return [r for r in found if models is None or r["model"] in models]
