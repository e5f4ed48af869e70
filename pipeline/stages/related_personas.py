"""TRIDENT step 4 (personas.expansion): from each persona, `fanout` personas "in a close relationship"
with it, iterated to `depth`. The stage consumes its own output: a persona of depth d is expanded
while d < depth."""

from __future__ import annotations

from pydantic import Field

from personas.expansion import expands, relation
from personas.model import Persona
from personas.records import persona_records
from pipeline.llm.types import Result
from pipeline.records import Record
from pipeline.stages.refusals import GeneratorStage, RefusalCheckParams
from pipeline.taxonomy import hazard


class RelatedPersonasParams(RefusalCheckParams):
    depth: int = Field(default=1, ge=0, le=6, description="expansion steps from a scenario's persona")
    fanout: int = Field(default=2, ge=1, le=16, description="related personas per persona and step")


class RelatedPersonasStage(GeneratorStage):
    name = "related_personas"
    description = "personas in a close relationship with each persona, to a configured depth"
    consumes = ("personas", "related_personas")
    prompt = "related_persona"
    Answer = Persona
    Params = RelatedPersonasParams

    def skip(self, item: Record) -> bool:
        return not expands(item.data["depth"], self.params.depth)

    def variables(self, item: Record) -> dict[str, object]:
        return {
            "persona": item.data["text"],
            "relation": relation(self.ctx.seed_for(item.id, "relation")),
            "name": hazard(item.category).name,
        }

    def samples(self, item: Record) -> int:
        return self.params.fanout

    def checked_text(self, answer: Persona) -> str:
        return answer.summary

    def parse_answers(self, item: Record, result: Result, answers: list[Persona]) -> list[Record]:
        return persona_records(self.ctx, item, result, answers, depth=item.data["depth"] + 1)
