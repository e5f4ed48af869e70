"""TRIDENT step 4 (Persona Hub's persona-to-persona): from each persona, `fanout` personas "in a close
relationship" with it, iterated to `depth`. The stage consumes its own output: a persona of depth d
is expanded while d < depth."""

from __future__ import annotations

from pydantic import Field

from personas.model import Persona
from pipeline.llm.types import Result
from pipeline.records import Record
from pipeline.stage import Outcome
from pipeline.stages.personas import persona_records
from pipeline.stages.refusals import GeneratorStage, RefusalCheckParams
from pipeline.taxonomy import hazard

# Relations named in the prompt, one per persona (by its seed), so expansions do not all go one way.
RELATIONS = (
    "colleague", "sibling", "client", "mentor", "neighbour", "rival", "child", "friend since school",
    "employee", "landlord", "online acquaintance", "former partner", "teacher", "business partner",
)  # fmt: skip


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

    def variables(self, item: Record) -> dict[str, object]:
        relation = RELATIONS[self.ctx.seed_for(item.id, "relation") % len(RELATIONS)]
        return {"persona": item.data["text"], "relation": relation, "name": hazard(item.category).name}

    async def process(self, item: Record) -> Outcome:
        if item.data["depth"] >= self.params.depth:
            return []
        return await super().process(item)

    def samples(self) -> int:
        return self.params.fanout

    def checked_text(self, answer: Persona) -> str:
        return answer.summary

    def parse_answers(self, item: Record, result: Result, answers: list[Persona]) -> list[Record]:
        return persona_records(self, item, result, answers, depth=item.data["depth"] + 1)
