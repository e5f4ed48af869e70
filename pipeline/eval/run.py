"""Run an eval: the eval stages through the runner (cached, concurrent, resumable), then the metrics
into `eval_results`.

    outcome = run_eval("configs/eval_xstest.yaml", "data/safeset.duckdb")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.eval.config import load_eval_config
from pipeline.eval.metrics import MetricRow
from pipeline.eval.results import score_run
from pipeline.eval.sets import load_set
from pipeline.runner import ProgressSink, Runner, RunSummary
from pipeline.store import Store


@dataclass
class EvalOutcome:
    summary: RunSummary
    rows: list[MetricRow]


def run_eval(
    config_path: str | Path,
    db_path: str | Path,
    progress: ProgressSink | None = None,
    *,
    endpoint: str | None = None,
    model: str | None = None,
) -> EvalOutcome:
    config, plan = load_eval_config(config_path, endpoint=endpoint, model=model)
    store = Store.open(db_path)
    try:
        for name, spec in config.sets.items():  # a set that cannot be read fails before anything is written
            load_set(name, spec, store)
        summary = Runner(plan, store, progress=progress).run()
        return EvalOutcome(summary, score_run(store, summary.run_id))
    finally:
        store.close()
