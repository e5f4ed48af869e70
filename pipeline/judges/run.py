"""Judge validation: put every LLM judge a config uses to labelled files, through the runner (cached,
concurrent, resumable), and store how often each agrees with the labels in `judge_results`.

    outcome = validate_judges("configs/core.yaml", "data/safeset.duckdb")
    outcome = validate_judges("configs/eval_xstest.yaml", db, files={"refusals": "mine.csv"})

A run config's judges come from its stages (safety_filter; evolve's safety judge; the core / edge
response check; any refusal classifier of kind judge), an eval config's from its `judge` section. The
judge run is `<name>-judges-<hash>`, its hash fixed by the judges' settings and the files' contents.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import ConfigError, RunPlan, load_config, validate_config
from pipeline.judges.results import JudgeResult, compute, save
from pipeline.judges.sets import QUESTIONS, LabelError, Question, default_file, load_labels
from pipeline.judges.stages import JUDGE_STAGES, QUESTION_OF, JudgeSpec
from pipeline.runner import ProgressSink, Runner, RunSummary
from pipeline.stages import STAGES
from pipeline.store import Store


@dataclass
class JudgesOutcome:
    summary: RunSummary
    results: list[JudgeResult]


def validate_judges(
    config_path: str | Path,
    db_path: str | Path,
    files: dict[Question, str | Path] | None = None,
    progress: ProgressSink | None = None,
) -> JudgesOutcome:
    """Raises ConfigError for a config without judges and LabelError for a bad labelled file, both
    before anything is written."""
    plan = judges_plan(config_path, files or {})
    store = Store.open(db_path)
    try:
        summary = Runner(plan, store, progress=progress).run()
        files = plan.stage("judge_items").params.files  # type: ignore[attr-defined]
        model = plan.config.roles.resolve("judge")[0].model
        results = compute(store, summary.run_id, model, files)
        save(store, summary.run_id, results)
        return JudgesOutcome(summary, results)
    finally:
        store.close()


def judges_plan(config_path: str | Path, files: dict[Question, str | Path]) -> RunPlan:
    """The judge run of a config: its judges, and the labelled files read and checked."""
    name, seed, roles, judges = _judges_of(config_path)
    if not judges:
        raise ConfigError(
            str(config_path),
            ["it uses no LLM judge (safety_filter, evolve, core/edge checks, a judge refusal classifier, "
             "or an eval's judge section)"],
        )  # fmt: skip
    questions = sorted({QUESTION_OF[j.kind] for j in judges}, key=QUESTIONS.index)
    chosen = {q: str(files.get(q) or default_file(q)) for q in questions}
    for question, path in chosen.items():
        load_labels(question, path)  # raises LabelError before the run is recorded
    digests = {q: hashlib.sha256(Path(p).read_bytes()).hexdigest()[:16] for q, p in chosen.items()}
    items = {"judges": [j.model_dump() for j in judges], "files": chosen, "digests": digests}
    raw = {"name": f"{name[:56]}-judges", "seed": seed, "roles": roles,
           "stages": {"judge_items": items, "judge_verdicts": {}}}  # fmt: skip
    return validate_config(raw, str(config_path), stages=JUDGE_STAGES)


def _judges_of(config_path: str | Path) -> tuple[str, int, dict[str, Any], list[JudgeSpec]]:
    """(name, seed, roles, judges) of a run config or an eval config (one with `sets`)."""
    try:
        raw = yaml.safe_load(Path(config_path).read_text())
    except (OSError, yaml.YAMLError):
        raw = None
    if isinstance(raw, dict) and "sets" in raw:
        from pipeline.eval.config import load_eval_config

        config, _ = load_eval_config(config_path)
        judges = []
        if config.judge is not None and config.judge.refusal is not None:
            settings = config.judge.refusal.model_dump()
            judges.append(JudgeSpec(name="refusal_judge", kind="refusal_judge", settings=settings))
        if config.judge is not None and config.judge.harm:
            settings = {"max_tokens": config.judge.max_tokens}
            judges.append(JudgeSpec(name="harm_judge", kind="harm_judge", settings=settings))
        return config.name, config.seed, config.roles.model_dump(exclude_none=True), judges
    plan = load_config(config_path, stages=STAGES)  # a generation config; missing or invalid: ConfigError
    return (
        plan.config.name,
        plan.config.seed,
        plan.config.roles.model_dump(exclude_none=True),
        _run_judges(plan),
    )


def _run_judges(plan: RunPlan) -> list[JudgeSpec]:
    found: list[tuple[str, str, dict[str, Any]]] = []  # (stage, kind, settings)
    for stage in plan.stages:
        name, params = stage.cls.name, stage.params
        if name == "safety_filter":
            found.append((name, "safety_filter", params.model_dump(exclude={"concurrency"})))
        if name == "evolve":
            found.append((name, "evolve_judge", {}))
        if name in ("core", "edge") and getattr(params, "check", False):
            found.append((name, "response_check", {"guard_model": params.guard_model}))
        classifier = getattr(params, "classifier", None)
        if classifier is not None and classifier.kind == "judge":
            found.append((name, "refusal_judge", classifier.model_dump()))
    distinct: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}  # the same judge asked alike once
    for stage, kind, settings in found:
        distinct.setdefault((kind, json.dumps(settings, sort_keys=True)), (stage, settings))
    kinds = Counter(kind for kind, _ in distinct)
    return [
        JudgeSpec(name=kind if kinds[kind] == 1 else f"{kind}@{stage}", kind=kind, settings=settings)
        for (kind, _), (stage, settings) in distinct.items()
    ]


__all__ = ["JudgesOutcome", "LabelError", "judges_plan", "validate_judges"]
