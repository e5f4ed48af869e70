"""The kinds of run and the stages each may name: `safeset run` generates a dataset, `safeset eval`
answers and scores eval sets, `safeset judges` checks the LLM judges against labelled examples.

A config is validated against the stages of its kind only, so a generation config cannot name an eval
stage. A stored run is of the kind whose stages hold all of its stage names (no stage is in two kinds).
"""

from __future__ import annotations

from typing import Any

from pipeline.eval.stages import EVAL_STAGES
from pipeline.judges.stages import JUDGE_STAGES
from pipeline.stage import Stage
from pipeline.stages import STAGES

RUN_KINDS: dict[str, list[type[Stage]]] = {"run": STAGES, "eval": EVAL_STAGES, "judges": JUDGE_STAGES}


def kind_of(config: dict[str, Any]) -> str:
    """The kind of a stored run config, told by its stage names. One that fits no kind is taken as a
    generation run, whose validation then names the stages it does not know."""
    names = set(config.get("stages") or {})
    for kind, stages in RUN_KINDS.items():
        if names and names <= {cls.name for cls in stages}:
            return kind
    return "run"


def stages_of(config: dict[str, Any]) -> list[type[Stage]]:
    """The stages a stored run config is validated against."""
    return RUN_KINDS[kind_of(config)]
