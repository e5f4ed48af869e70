"""A submitted run: its config (YAML text or a JSON object) and the overrides `safeset run` takes,
validated by the CLI's own loader, so an invalid config gets the CLI's field paths and messages.

The server keeps each accepted config as a file under its data folder (configs/<hash>.yaml), which
the run's record names; a restarted server loads the same file with the same overrides. Two more
rules than the CLI's, because the config comes from the network: no credentials in it (a URL with a
user:password@ or a query string; keys come from the server's environment), and no file outside the
server's data folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from pipeline.config import ConfigError, RunPlan, load_config
from pipeline.kinds import RUN_KINDS
from pipeline.serve.settings import ServeSettings

_DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


class Submission(BaseModel):
    """POST /v1/runs: a config and the overrides of `safeset run`."""

    model_config = ConfigDict(extra="forbid")
    config: str | dict[str, Any] = Field(
        description="the run config: YAML text, or the same as a JSON object"
    )
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1, description="override the config's seed")
    max_items: int | None = Field(default=None, ge=1, description="start at most N root items")
    endpoint: str | None = Field(
        default=None, description="point every LLM role at this server (needs model)"
    )
    model: str | None = Field(default=None, description="the model of every LLM role")
    retry_failed: bool = Field(default=False, description="retry items that failed in earlier sessions")

    def overrides(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "model": self.model, "seed": self.seed}

    def text(self) -> str:
        return self.config if isinstance(self.config, str) else json.dumps(self.config, indent=1)


def config_path(settings: ServeSettings, text: str) -> Path:
    return settings.configs_dir / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"


def accept(settings: ServeSettings, text: str, overrides: dict[str, Any]) -> RunPlan:
    """Validate the config with its overrides and keep it; ConfigError (nothing kept) when invalid."""
    path = config_path(settings, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staged.write_text(text, encoding="utf-8")
    try:
        plan = load(staged, overrides)
        problems = [*_credentials(plan), *_outside_files(plan, settings.data_dir)]
        if problems:
            raise ConfigError("the submitted config", problems)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    staged.replace(path)
    return load(path, overrides)


def materialize(settings: ServeSettings, text: str) -> Path:
    """The file of an accepted config, written again if it went missing."""
    path = config_path(settings, text)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path


def load(path: Path, overrides: dict[str, Any]) -> RunPlan:
    try:
        return load_config(path, stages=RUN_KINDS["run"], **overrides)
    except ConfigError as exc:
        # The messages name the config as the submitter sent it, not the server's file.
        raise ConfigError("the submitted config", exc.problems) from None


def _walk(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, (*path, str(index)))
    else:
        yield path, value


def _credentials(plan: RunPlan) -> list[str]:
    config = plan.config.model_dump(mode="json")
    return [
        f"{'.'.join(path)}: a URL with credentials (user:password@ or a query string) is not accepted by "
        "the server; give the key in the server's environment (the role's api_key_env)"
        for path, value in _walk(config)
        if isinstance(value, str) and value.startswith(("http://", "https://")) and _has_credentials(value)
    ]


def _has_credentials(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.username or parts.password or parts.query)


def _outside_files(plan: RunPlan, data_dir: Path) -> list[str]:
    """Stage settings that name a local file or folder outside the data folder."""
    problems = []
    root = data_dir.resolve()
    for stage in plan.stages:
        for path, value in _walk(stage.params.model_dump(mode="json"), ("stages", stage.cls.name)):
            if not isinstance(value, str) or not value or "\n" in value:
                continue
            given = Path(value)
            looks_local = given.suffix in _DATA_SUFFIXES or given.is_absolute() or ".." in given.parts
            if looks_local and not given.resolve().is_relative_to(root):
                problems.append(
                    f"{'.'.join(path)}: {value!r} is outside the server's data folder; the server reads "
                    f"files only under {root}"
                )
    return problems
