"""Judge validation results: verdicts read from a judge run's records, and agreement with the labels
per judge and model saved to the store's `judge_results` (read back with `store.judge_results()` for
the report and the dataset card).

    results = compute(store, run_id, model, files)
    save(store, run_id, results)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

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
    rows = store.judge_verdict_rows(run_id)
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
    store.save_judge_results(run_id, [asdict(r) for r in results])
