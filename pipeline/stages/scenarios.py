"""TRIDENT step 2: a scenario for each domain slot ("depict a scenario relevant to <domain>")."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from pipeline.llm.types import Result
from pipeline.records import Record
from pipeline.stages.refusals import GeneratorStage


class ScenarioAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scenario: str = Field(min_length=1, max_length=2000)


class ScenariosStage(GeneratorStage):
    name = "scenarios"
    description = "a scenario per intent-domain slot"
    consumes = ("domains",)
    prompt = "scenario"
    Answer = ScenarioAnswer

    def variables(self, item: Record) -> dict[str, object]:
        keys = ("name", "description", "subhazard", "actor", "setting", "intent")
        return {k: item.data[k] for k in keys}

    def checked_text(self, answer: ScenarioAnswer) -> str:
        return answer.scenario

    def parse_answers(self, item: Record, result: Result, answers: list[ScenarioAnswer]) -> list[Record]:
        return [self.ctx.record((item,), {"scenario": a.scenario.strip()}, made_by=result) for a in answers]
