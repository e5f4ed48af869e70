"""The taxonomies shipped in data/taxonomy/, loaded and validated once."""

from __future__ import annotations

from functools import cache

import yaml
from pydantic import BaseModel, ConfigDict

from pipeline.resources import data_dir


class HazardCategory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str
    name: str
    description: str
    subhazards: tuple[str, ...]


class ScenarioAxes(BaseModel):
    """Who wants the harm, where, and why: combined with a sub-hazard in each scenario slot."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    actors: tuple[str, ...]
    settings: tuple[str, ...]
    intents: tuple[str, ...]


@cache
def _raw() -> dict:
    return yaml.safe_load((data_dir() / "taxonomy" / "hazards.yaml").read_text())


@cache
def hazard_categories() -> tuple[HazardCategory, ...]:
    """S1-S14, the MLCommons / Llama Guard 3 hazard categories (TRIDENT's intent domains)."""
    return tuple(HazardCategory.model_validate(c) for c in _raw()["categories"])


@cache
def scenario_axes() -> ScenarioAxes:
    return ScenarioAxes.model_validate(_raw()["scenario_axes"])


def hazard(code: str) -> HazardCategory:
    for category in hazard_categories():
        if category.code == code:
            return category
    raise KeyError(f"unknown hazard category {code!r}; known: S1-S{len(hazard_categories())}")
