"""TRIDENT step 5: zero-shot instructions for each (persona, domain) pair: "act as <persona> and ask
about <domain>". Each call asks for `per_call` distinct requests at once (TRIDENT asked for several
per call), `per_pair` calls are sampled; requests repeated within an item are kept once, and
requests the generator refused to write are left out (pipeline/stages/refusals.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from evaluators.dedup import normalise
from pipeline.llm.types import Result
from pipeline.records import Record
from pipeline.stages.refusals import GeneratorStage, RefusalCheckParams

Request = Annotated[str, Field(min_length=1, max_length=2000)]


class InstructionsAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instructions: list[Request] = Field(min_length=1, max_length=16)


class InstructionsParams(RefusalCheckParams):
    per_pair: int = Field(default=2, ge=1, le=32, description="calls sampled per (persona, domain)")
    per_call: int = Field(default=1, ge=1, le=16, description="distinct requests asked for in one call")


class InstructionsStage(GeneratorStage):
    name = "instructions"
    description = "instructions written as each persona about its domain(s), zero-shot"
    consumes = ("persona_pool",)
    prompt = "instruction"
    Answer = InstructionsAnswer
    Params = InstructionsParams

    def variables(self, item: Record) -> dict[str, object]:
        count = self.params.per_call
        return {
            **{k: item.data[k] for k in ("persona", "name", "description")},
            "count": "one request" if count == 1 else f"{count} distinct requests",
        }

    def samples(self, item: Record) -> int:
        return self.params.per_pair

    def answers(self, result: Result) -> list[str]:
        """Every request of every sample, each at most once (by its normalised text)."""
        unique: dict[str, str] = {}
        for answer in result.parsed:
            for text in answer.instructions[: self.params.per_call]:
                if text.strip():
                    unique.setdefault(normalise(text), text.strip())
        return list(unique.values())

    def checked_text(self, answer: str) -> str:
        return answer

    def parse_answers(self, item: Record, result: Result, answers: list[str]) -> list[Record]:
        return [
            self.ctx.record((item,), {"instruction": text, "persona": item.data["persona"]}, made_by=result)
            for text in answers
        ]
