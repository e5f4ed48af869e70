"""Prompt templates: one YAML file each under prompts/, with a name and a version.

    name: scenario
    version: 1
    description: what the prompt is for
    system: optional system message
    user: |
      Text with $variables (string.Template syntax; write $$ for a literal dollar sign).

The version is part of every LLM cache key and of each record's lineage: bump it when the wording
changes so old answers are not reused for the new prompt.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from functools import cache
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from pipeline.llm.types import ChatRequest
from pipeline.resources import prompts_dir


class PromptTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    version: int = Field(ge=1)
    description: str
    system: str | None = None
    user: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def variables(self) -> set[str]:
        found: set[str] = set()
        for text in (self.system or "", self.user):
            for _, named, braced, _ in string.Template.pattern.findall(text):
                if named or braced:
                    found.add(named or braced)
        return found

    def render(self, **values: object) -> list[dict[str, str]]:
        missing = self.variables() - values.keys()
        if missing:
            raise KeyError(f"prompt {self.ref} needs values for: {', '.join(sorted(missing))}")
        text = {k: str(v) for k, v in values.items()}
        messages = []
        if self.system:
            messages.append({"role": "system", "content": string.Template(self.system).substitute(text)})
        messages.append({"role": "user", "content": string.Template(self.user).substitute(text)})
        return messages

    def request(self, values: Mapping[str, object], *, seed: int | None, **settings: Any) -> ChatRequest:
        """The request for this prompt filled with `values`: the one way a templated call is built.
        `settings` are the other ChatRequest fields (n, temperature, top_p, max_tokens, logprobs)."""
        return ChatRequest(messages=tuple(self.render(**values)), template=self.ref, seed=seed, **settings)


@cache
def load_prompt(name: str) -> PromptTemplate:
    path = prompts_dir() / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in prompts_dir().glob("*.yaml"))
        raise FileNotFoundError(f"no prompt template {name!r} in {prompts_dir()}; known: {', '.join(known)}")
    template = PromptTemplate.model_validate(yaml.safe_load(path.read_text()))
    if template.name != name:
        raise ValueError(f"{path} declares name {template.name!r}; it must match the file name {name!r}")
    return template
