"""The status of a run as plain data: per-stage progress, LLM usage and cost, failures.

While a run holds its database, no other process may open it, so the runner also publishes this
status every few seconds to `<db>.status.json`; `safeset status` reads that file when the database
is busy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.coverage import coverage_fill
from pipeline.stage import Stage
from pipeline.store import Store


def run_status(store: Store, run_id: str, stages: Sequence[type[Stage]]) -> dict[str, Any]:
    """The status of a run as plain data (what `status --json` prints). `stages`: those of the run's
    kind (pipeline.kinds), against which its stored config is read."""
    from pipeline.config import validate_config
    from pipeline.refusal_accounting import refusal_accounting, refusal_advice

    config = store.run_config(run_id) or {}
    plan = validate_config(config, source=f"run {run_id}", stages=stages)
    progress = store.progress_counts(run_id)
    outputs = store.output_counts(run_id)
    stages: dict[str, dict[str, int]] = {}
    dropped: dict[str, int] = {}
    produced: dict[str, int] = {}
    for stage_plan in plan.stages:
        name = stage_plan.cls.name
        counts = progress.get(name, {})
        if stage_plan.cls.is_source():
            done, pending = outputs.get(name, 0), 0
        else:
            done = counts.get("done", 0) + counts.get("dropped", 0)
            pending = store.count_pending(run_id, name, stage_plan.cls.consumes)
        stages[name] = {"done": done, "pending": pending, "failed": counts.get("failed", 0)}
        dropped[name] = counts.get("dropped", 0)
        produced[name] = outputs.get(name, 0)
    usage = store.usage(run_id)
    refusals = refusal_accounting(store, run_id)
    llm = {
        key: sum(u[key] for u in usage) for key in ("calls", "cached", "prompt_tokens", "completion_tokens")
    }
    return {
        "run": run_id,
        "stages": stages,
        "llm": llm,
        "dropped": dropped,
        "records": produced,
        "cost_usd": round(sum(u["cost_usd"] for u in usage), 6),
        "usage": usage,
        "failures": store.failure_reasons(run_id),
        "coverage": coverage_fill(store, run_id, {s.cls.name: s.params for s in plan.stages}),
        "generator_refusals": refusals,
        "advice": refusal_advice(refusals),
    }


def live_status_path(db_path: str | Path) -> Path:
    return Path(f"{db_path}.status.json")


def publish_live_status(db_path: str | Path, report: dict[str, Any]) -> None:
    """Write the status atomically (readers never see half a file)."""
    path = live_status_path(db_path)
    report = {**report, "pid": os.getpid(), "updated_at": datetime.now(UTC).isoformat(timespec="seconds")}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, default=str))
    tmp.replace(path)


def read_live_status(db_path: str | Path, pid: int | None) -> dict[str, Any] | None:
    """The status the running process `pid` last published, if any."""
    path = live_status_path(db_path)
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return report if report.get("pid") == pid else None
