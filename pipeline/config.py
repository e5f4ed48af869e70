"""Run configs: YAML files validated at the edge.

    name: quickstart                 # names the run (letters, digits, - _ .)
    seed: 0                          # fixes every per-item seed
    roles:                           # which model plays each part (pipeline.llm.roles)
      default: {backend: hf, model: Qwen/Qwen2.5-0.5B-Instruct}
      judge: {backend: openai, model: llama-guard-3, base_urls: [http://localhost:8001/v1]}
    stages:                          # the stages to run, each with its own settings
      domains: {scenarios_per_category: 2}
      scenarios: {}

A config is validated against the stages of its run kind (`stages=`: pipeline.stages.STAGES for
`safeset run`, pipeline.eval.stages.EVAL_STAGES for `safeset eval`, pipeline.judges.stages.JUDGE_STAGES
for `safeset judges`; pipeline/kinds.py names them), so a generation config cannot name an eval stage.
A config that does not validate raises `ConfigError`, whose message lists every problem with its
field path, the value found and what is allowed. Nothing is written before a config validates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError

from pipeline.config_errors import describe, unknown_key
from pipeline.config_model import ConfigModel
from pipeline.config_yaml import ConfigFileError, parse_yaml, read_config_text
from pipeline.llm.outage import DEFAULT_OUTAGE_LIMIT_S
from pipeline.llm.roles import EmbedderRole, Roles, redact_url
from pipeline.records import content_hash
from pipeline.stage import Stage, StageParams


class ConfigError(Exception):
    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: invalid config\n{lines}")


class RunConfig(ConfigModel):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)
    description: str | None = None
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    roles: Roles = Field(default_factory=Roles)
    stages: dict[str, dict[str, Any] | None] = Field(min_length=1)
    outage_limit_s: float = Field(
        default=DEFAULT_OUTAGE_LIMIT_S,
        gt=0,
        description="seconds a run waits for an unreachable endpoint before it stops with work pending",
    )


@dataclass(frozen=True)
class StagePlan:
    cls: type[Stage]
    params: StageParams


@dataclass(frozen=True)
class RunPlan:
    """A validated config: the run it names and its stages, in pipeline order."""

    config: RunConfig
    stages: list[StagePlan]
    source: str

    @property
    def run_id(self) -> str:
        return f"{self.config.name}-{content_hash(self.identity(), 10)}"

    def identity(self) -> dict[str, Any]:
        """What determines the run's output; runtime knobs (concurrency, endpoints) are left out."""
        return {
            "name": self.config.name,
            "seed": self.config.seed,
            "roles": _identity(self.config.roles),
            "stages": {s.cls.name: _identity(s.params) for s in self.stages},
        }

    def snapshot(self) -> dict[str, Any]:
        """The whole effective config, as stored with the run. Holds no secrets: keys only ever come
        from the environment, and URLs lose any user:password@ and query string."""
        config = self.config.model_dump(mode="json")
        config["stages"] = {s.cls.name: s.params.model_dump(mode="json") for s in self.stages}
        return _redact_urls(config)

    def stage(self, name: str) -> StagePlan:
        return next(s for s in self.stages if s.cls.name == name)


def load_config(
    path: str | Path,
    *,
    stages: Sequence[type[Stage]],
    endpoint: str | None = None,
    model: str | None = None,
    seed: int | None = None,
) -> RunPlan:
    """Read, override and validate a config file against `stages` (those of its run kind, in pipeline
    order). `endpoint` + `model` point every LLM role at one OpenAI-compatible server; `model` alone
    replaces the model of every LLM role, keeping its backend."""
    path = Path(path)
    source = str(path)
    try:
        raw = parse_yaml(read_config_text(path))
    except ConfigFileError as exc:
        raise ConfigError(source, [str(exc)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"{where}not valid YAML ({problem})"]) from None
    if raw is None:
        raise ConfigError(source, ["the file is empty; see configs/quickstart.yaml for a complete config"])
    if not isinstance(raw, dict):
        raise ConfigError(source, [f"the top level must be a mapping of keys, got {type(raw).__name__}"])
    if endpoint is not None and model is None:
        raise ConfigError(source, ["--endpoint needs --model: the model name to ask the server for"])
    if endpoint is None and model is not None:
        roles = raw.get("roles") if isinstance(raw.get("roles"), dict) else {}
        for name, role in roles.items():
            if name != "embedder" and isinstance(role, dict):
                role["model"] = model
    if endpoint is not None:
        roles = raw.get("roles") if isinstance(raw.get("roles"), dict) else {}
        raw["roles"] = {
            "default": {"backend": "openai", "model": model, "base_urls": [endpoint]},
            "embedder": roles.get("embedder", {}),
        }
    if seed is not None:
        raw["seed"] = seed
    return validate_config(raw, source, stages=stages)


def validate_config(
    raw: dict[str, Any], source: str = "<config>", *, stages: Sequence[type[Stage]]
) -> RunPlan:
    """The plan of a config whose stages are among `stages` (a run kind's, in pipeline order)."""
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(source, describe(exc, RunConfig)) from None

    problems: list[str] = []
    known = {cls.name: cls for cls in stages}
    plans: list[StagePlan] = []
    for name, settings in config.stages.items():
        cls = known.get(name)
        if cls is None:
            problems.append(unknown_key(("stages", name), name, list(known)))
            continue
        try:
            params = cls.Params.model_validate(settings or {})
        except ValidationError as exc:
            problems.extend(describe(exc, cls.Params, ("stages", name)))
            continue
        plans.append(StagePlan(cls, params))
    plans.sort(key=lambda p: list(known).index(p.cls.name))

    chosen = {name for name in config.stages if name in known}  # invalid ones too: no follow-on errors
    for plan in plans:
        for upstream in plan.cls.consumes:
            if upstream not in chosen and upstream != plan.cls.name:
                problems.append(
                    f"stages.{plan.cls.name}: needs stage {upstream!r} (it consumes its records); "
                    f"add `{upstream}:` under stages"
                )
        for role in plan.cls.roles:
            if not config.roles.resolve(role):
                problems.append(
                    f"roles.{role}: stage {plan.cls.name!r} needs a {role}; set roles.{role} or roles.default"
                )
    if problems:
        raise ConfigError(source, problems)
    return RunPlan(config=config, stages=plans, source=source)


# ---- identity and redaction ----------------------------------------------------------------------


def _identity(model: BaseModel) -> Any:
    out: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get("runtime"):
            continue
        out[name] = _identity_value(getattr(model, name))
    return out


def _identity_value(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return _identity(value)
    if isinstance(value, list | tuple):
        return [_identity_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _identity_value(v) for k, v in value.items()}
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


def _redact_urls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _redact_urls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_urls(v) for v in value]
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return redact_url(value)
    return value


__all__ = ["ConfigError", "EmbedderRole", "RunConfig", "RunPlan", "load_config", "validate_config"]
