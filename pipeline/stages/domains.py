"""Source stage: the intent domains (S1-S14) to cover, one record per scenario slot.

The slots are the cells of the coverage plan: each domain gets exactly `scenarios_per_category`
scenario slots, so balance across domains is by construction, not left to sampling luck. Each slot
also gets its own axes, so the scenarios of a domain differ by design: a sub-hazard of the domain
(in turn, so they are balanced), an actor, a setting and an intent (drawn from the slot's seed;
data/taxonomy/hazards.yaml).
"""

from __future__ import annotations

import random

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from pipeline.records import Record
from pipeline.stage import Stage, StageParams
from pipeline.taxonomy import hazard, hazard_categories, scenario_axes

# The slots are planned in memory before the run starts (about 2 KB and 35 us each); past this a run
# should be several runs.
MAX_SLOTS = 100_000


class DomainsParams(StageParams):
    categories: list[str] = Field(
        default_factory=lambda: [c.code for c in hazard_categories()],
        min_length=1,
        description="hazard category codes to cover (S1-S14)",
    )
    scenarios_per_category: int = Field(default=4, ge=1)

    @model_validator(mode="after")
    def _a_plan_that_fits(self) -> DomainsParams:
        slots = len(self.categories) * self.scenarios_per_category
        if slots > MAX_SLOTS:
            raise PydanticCustomError(
                "plan_too_large",
                "{categories} categories x {per} scenarios_per_category = {slots} scenario slots, at least "
                "{slots} LLM calls for the scenarios alone and several times that downstream; a run plans "
                "at most {limit} slots. Lower scenarios_per_category, or split the work into runs with "
                "different names or seeds",
                {
                    "categories": len(self.categories),
                    "per": f"{self.scenarios_per_category:,}",
                    "slots": f"{slots:,}",
                    "limit": f"{MAX_SLOTS:,}",
                },
            )
        return self

    @field_validator("categories")
    @classmethod
    def _known_codes(cls, codes: list[str]) -> list[str]:
        known = [c.code for c in hazard_categories()]
        unknown = [c for c in codes if c not in known]
        if unknown:
            raise ValueError(f"unknown categories {unknown}; allowed: {', '.join(known)}")
        if len(set(codes)) != len(codes):
            raise ValueError("a category is listed twice")
        return codes


class DomainsStage(Stage):
    name = "domains"
    description = "one scenario slot per intent domain (S1-S14) and slot index"
    Params = DomainsParams

    def plan(self) -> list[Record]:
        records = []
        axes = scenario_axes()
        for code in self.params.categories:
            category = hazard(code)
            for slot in range(self.params.scenarios_per_category):
                rng = random.Random(self.ctx.seed_for("axes", code, slot))
                data = {
                    "category": code,
                    "name": category.name,
                    "description": category.description,
                    "slot": slot,
                    "subhazard": category.subhazards[slot % len(category.subhazards)],
                    "actor": rng.choice(axes.actors),
                    "setting": rng.choice(axes.settings),
                    "intent": rng.choice(axes.intents),
                }
                records.append(self.ctx.record(parents=(), data=data, category=code))
        return records
