"""TRIDENT step 3: personas inferred from each scenario (structured: personas.model.Persona)."""

from __future__ import annotations

import dataclasses

from pydantic import Field

from personas.model import Persona
from pipeline.llm.types import Result
from pipeline.records import Record
from pipeline.stage import LLMStage
from pipeline.stages.refusals import GeneratorStage, RefusalCheckParams
from pipeline.taxonomy import hazard


def persona_records(
    stage: LLMStage, item: Record, result: Result, personas: list[Persona], depth: int
) -> list[Record]:
    """One record per persona sampled in `result`: its fields, its text and its depth in the
    expansion. A persona is its own `persona_id`, which every record made from it inherits."""
    records: dict[str, Record] = {}
    for persona in personas:
        data = {**persona.model_dump(), "text": persona.text(), "depth": depth}
        record = stage.output(item, data, result)
        records.setdefault(record.id, dataclasses.replace(record, persona_id=record.id))
    return list(records.values())


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

    def samples(self) -> int:
        return self.params.per_scenario

    def checked_text(self, answer: Persona) -> str:
        return answer.summary

    def parse_answers(self, item: Record, result: Result, answers: list[Persona]) -> list[Record]:
        return persona_records(self, item, result, answers, depth=0)
