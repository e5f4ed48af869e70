"""Eval configs: which models to evaluate, on which sets, judged how. Validated at the edge.

    name: xstest-qwen                 # names the eval run (letters, digits, - _ .)
    roles:                            # as in run configs
      target: [{backend: openai, model: Qwen/Qwen2.5-7B-Instruct, base_urls: [http://localhost:8000/v1]}]
      judge: {backend: openai, model: gpt-4o-mini}
    sets:                             # pipeline.eval.sets.EvalSet
      xstest: {benchmark: xstest}
      core: {generated: core}         # the test split of the latest run's core dataset
    answers: {max_tokens: 512}        # target decoding (temperature 0 by default)
    refusal: [{kind: classifier}, {kind: prefix}]   # refusal classifiers without an LLM (the default)
    judge: {refusal: {kind: judge, scheme: xstest}, harm: true}   # needs roles.judge

An eval is a run of the eval stages (pipeline.eval.stages) under the run id `<name>-<hash>`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.config import ConfigError, RunPlan, validate_config
from pipeline.config_errors import describe
from pipeline.eval.sets import EvalSet
from pipeline.eval.stages import (
    EVAL_STAGES,
    AnswersParams,
    JudgeParams,
    RefusalClassifierConfig,
    RefusalParams,
    default_classifiers,
)
from pipeline.llm.roles import Roles


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)
    description: str | None = None
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    roles: Roles
    sets: dict[str, EvalSet] = Field(min_length=1)
    answers: AnswersParams = Field(default_factory=AnswersParams)
    refusal: list[RefusalClassifierConfig] = Field(default_factory=default_classifiers, min_length=1)
    judge: JudgeParams | None = Field(default=None, description="LLM-judged refusal and Harm Score")

    @model_validator(mode="after")
    def _roles_present(self) -> EvalConfig:
        RefusalParams(classifiers=self.refusal)  # one classifier of each kind
        if not self.roles.resolve("target"):
            raise ValueError("roles.target: name the model(s) to evaluate")
        if self.judge is not None and not self.roles.resolve("judge"):
            raise ValueError("judge needs a judge model: set roles.judge")
        return self

    def run_config(self) -> dict[str, Any]:
        """The equivalent run config of the eval stages."""
        stages: dict[str, Any] = {
            "eval_prompts": {"sets": {k: v.model_dump(exclude_defaults=True) for k, v in self.sets.items()}},
            "eval_answers": self.answers.model_dump(exclude_defaults=True),
            "eval_refusal": {"classifiers": [c.model_dump(exclude_defaults=True) for c in self.refusal]},
        }
        if self.judge is not None:
            stages["eval_judge"] = self.judge.model_dump(exclude_defaults=True)
        return {
            "name": self.name,
            "description": self.description,
            "seed": self.seed,
            "roles": self.roles.model_dump(exclude_none=True),
            "stages": stages,
        }


def load_eval_config(
    path: str | Path, *, endpoint: str | None = None, model: str | None = None
) -> tuple[EvalConfig, RunPlan]:
    """Read and validate an eval config; raises ConfigError naming each problem's field. `endpoint` +
    `model` make the target one model on that OpenAI-compatible server; `model` alone replaces the
    target's model (of every target), keeping its backend. The judge is left as configured."""
    source = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(source, ["file not found; see configs/eval_xstest.yaml"]) from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(source, [f"cannot read it as YAML: {exc}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError(source, ["the top level must be a mapping; see configs/eval_xstest.yaml"])
    if endpoint is not None and model is None:
        raise ConfigError(source, ["--endpoint needs --model: the model name to ask the server for"])
    if model is not None:
        raw["roles"] = _target_overridden(raw.get("roles"), endpoint, model)
    try:
        config = EvalConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(source, describe(exc, EvalConfig)) from None
    return config, validate_config(config.run_config(), source, stages=EVAL_STAGES)


def _target_overridden(roles: Any, endpoint: str | None, model: str) -> Any:
    if not isinstance(roles, dict):
        return roles  # validation names the problem
    if endpoint is not None:
        return {**roles, "target": {"backend": "openai", "model": model, "base_urls": [endpoint]}}
    targets = roles.get("target")
    if isinstance(targets, dict):
        return {**roles, "target": {**targets, "model": model}}
    if isinstance(targets, list):
        return {**roles, "target": [{**t, "model": model} if isinstance(t, dict) else t for t in targets]}
    return roles
