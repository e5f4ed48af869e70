"""TRIDENT step 3: personas inferred from each scenario (structured: personas.model.Persona)."""

from __future__ import annotations

from pydantic import Field

from personas.model import Persona
from personas.records import persona_records
from pipeline.llm.types import Result
from pipeline.records import Record
from pipeline.stages.refusals import GeneratorStage, RefusalCheckParams
from pipeline.taxonomy import hazard


class PersonasParams(RefusalCheckParams):
    per_scenario: int = Field(default=1, ge=1, le=16, description="personas sampled per scenario")


class PersonasStage(GeneratorStage):
    name = "personas"
    description = "personas (occupation, traits, opinions, life experience) inferred from each scenario"
    consumes = ("scenarios",)
    prompt = "persona"
    Answer = Persona
    Params = PersonasParams

    def variables(self, item: Record) -> dict[str, object]:
        return {"name": hazard(item.category).name, "scenario": item.data["scenario"]}

    def samples(self, item: Record) -> int:
        return self.params.per_scenario

    def checked_text(self, answer: Persona) -> str:
        return answer.summary

    def parse_answers(self, item: Record, result: Result, answers: list[Persona]) -> list[Record]:
        return persona_records(self.ctx, item, result, answers, depth=0)
