"""What a report shows, read from the store: the run, its scorecards and those compared with it, the
scorecards of the same datasets in earlier runs, search curves, generator refusals and failures.

Search curves are read generically: any record of the run whose data has a numeric `iteration` and
`fitness` (EvoRefuse's `evolve_candidates`, one per instruction tried) counts, grouped by stage and
iteration, with the mean `refusal_rate` where records carry one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.refusal_accounting import refusal_accounting
from pipeline.store import Store


@dataclass
class Curve:
    stage: str
    iterations: list[int]
    mean_fitness: list[float]
    best_fitness: list[float]  # best seen so far, up to and including the iteration
    refusal_rate: list[float | None]
    items: list[int]


@dataclass
class ReportData:
    run: dict[str, Any]
    cards: list[dict[str, Any]]  # the run's datasets
    compared: list[dict[str, Any]]  # outside datasets (or other runs) beside them
    history: dict[str, list[dict[str, Any]]]  # dataset -> its scorecards over runs, oldest first
    curves: list[Curve] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    refusals: dict[str, dict[str, Any]] = field(default_factory=dict)  # generator refusals per category
    evals: list[dict[str, Any]] = field(default_factory=list)  # every eval run: model x set
    eval_categories: list[dict[str, Any]] = field(default_factory=list)  # ... per category
    judges: list[dict[str, Any]] = field(default_factory=list)  # the latest validation of each judge


def collect(
    store: Store, run_id: str, cards: list[dict[str, Any]], compared: list[dict[str, Any]]
) -> ReportData:
    run = next(r for r in store.runs() if r["run_id"] == run_id)
    history = {card["dataset"]: _latest_per_run(store.scorecard_history(card["dataset"])) for card in cards}
    return ReportData(
        run=run,
        cards=cards,
        compared=compared,
        history=history,
        curves=curves(store, run_id),
        failures=store.failure_reasons(run_id, limit=50),
        refusals=refusal_accounting(store, run_id),
        evals=store.eval_results(),
        eval_categories=store.eval_results(group_by="category"),
        judges=store.judge_results(),
    )


def _latest_per_run(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    latest: dict[str | None, dict[str, Any]] = {}
    for card in cards:  # oldest first, so later ones win
        latest.pop(card["run_id"], None)
        latest[card["run_id"]] = card
    return list(latest.values())


def curves(store: Store, run_id: str) -> list[Curve]:
    by_stage: dict[str, Curve] = {}
    for stage, iteration, mean, best, refusal, n in store.search_steps(run_id):
        curve = by_stage.setdefault(stage, Curve(stage, [], [], [], [], []))
        curve.iterations.append(iteration)
        curve.mean_fitness.append(mean)
        curve.best_fitness.append(max(best, curve.best_fitness[-1]) if curve.best_fitness else best)
        curve.refusal_rate.append(refusal)
        curve.items.append(n)
    return list(by_stage.values())
