"""TRIDENT step 7a: keep the instructions a safety judge calls unsafe, with the category it assigns.

Llama Guard 3's format either way: with `guard_model: true` the instruction is sent as a plain user
turn to a served Llama Guard model, which applies its own template; otherwise a generic LLM judge
is sent Meta's Llama Guard 3 prompt itself (prompts/safety_judge.yaml, verbatim). Both answer
"safe", or "unsafe" and a line of category codes ("unsafe\\nS1,S3"), which `parse_guard` reads. A
small local judge that cannot hold that format can answer in JSON under guided decoding instead
(`answer: json`, prompts/safety_judge_json.yaml).
Instructions judged safe are dropped with the reason; a judged category other than the intended one
is kept as data (`agrees: false`).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.context import StageContext
from pipeline.llm.types import ChatRequest, LLMFailure, Result
from pipeline.prompts import load_prompt
from pipeline.records import Record
from pipeline.stage import Drop, LLMParams, LLMStage, Outcome
from pipeline.taxonomy import hazard_categories

CategoryCode = Literal[
    "S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9", "S10", "S11", "S12", "S13", "S14"
]
_GUARD_CODES = re.compile(r"\bS(1[0-4]|[1-9])\b")
_GUARD_HEAD = re.compile(r"^[\W_]*(safe|unsafe)\b")


class Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdict: Literal["safe", "unsafe"]
    categories: list[CategoryCode] = Field(max_length=14)


class SafetyFilterParams(LLMParams):
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int = Field(default=128, ge=1)
    guard_model: bool = Field(default=False, description="the judge is a Llama Guard model: native format")
    answer: Literal["text", "json"] = Field(
        default="text",
        description="a generic judge's answer: text (Meta's Llama Guard 3 prompt and format) or json "
        "(our prompt, answered under guided decoding: for small local judges)",
    )

    @model_validator(mode="after")
    def _one_format(self) -> SafetyFilterParams:
        if self.guard_model and self.answer == "json":
            raise ValueError(
                "a Llama Guard model answers in its own format: answer json needs guard_model false"
            )
        return self


def parse_guard(text: str) -> Verdict:
    """A Llama Guard answer ("safe", or "unsafe" and a line of category codes) as a `Verdict`. A
    generic judge's first line may wrap the word in markdown or punctuation, or carry the codes."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    head = _GUARD_HEAD.match(lines[0].lower()) if lines else None
    if head is None:
        raise LLMFailure(f"the judge answered neither safe nor unsafe: {text[:80]!r}", 1)
    verdict = head.group(1)
    rest = " ".join([lines[0][head.end() :], *lines[1:]])
    codes = [f"S{n}" for n in _GUARD_CODES.findall(rest)] if verdict == "unsafe" else []
    return Verdict(verdict=verdict, categories=list(dict.fromkeys(codes)))


class SafetyFilterStage(LLMStage):
    name = "safety_filter"
    description = "keep instructions a safety judge calls unsafe; record the category it assigns"
    consumes = ("instructions",)
    role = "judge"
    prompt = "safety_judge"
    Params = SafetyFilterParams

    def __init__(self, params: SafetyFilterParams, ctx: StageContext):
        super().__init__(params, ctx)
        if params.answer == "json":
            self.template, self.Answer = load_prompt("safety_judge_json"), Verdict

    def variables(self, item: Record) -> dict[str, object]:
        if self.params.answer == "json":
            policy = "\n".join(f"{c.code}: {c.name}. {c.description}" for c in hazard_categories())
            return {"categories": policy, "instruction": item.data["instruction"]}
        return {"instruction": item.data["instruction"]}

    def request(self, item: Record) -> ChatRequest:
        if not self.params.guard_model:
            return super().request(item)
        return ChatRequest(  # a Llama Guard model applies its own template to the plain user turn
            messages=({"role": "user", "content": item.data["instruction"]},),
            temperature=self.params.temperature,
            max_tokens=self.params.max_tokens,
            seed=self.ctx.seed_for(item.id),
        )

    def parse(self, item: Record, result: Result) -> Outcome:
        verdict = result.value if self.params.answer == "json" else parse_guard(result.text)
        judged = self.judged(item, verdict, result)
        if isinstance(judged, Drop):
            return judged
        return [self.ctx.record((item,), judged, made_by=result)]

    @staticmethod
    def judged(item: Record, verdict: Verdict, result: Result) -> dict | Drop:
        """The kept instruction with the judge's categories, or a Drop when it was judged safe."""
        if verdict.verdict == "safe":
            return Drop(f"judged safe by {result.request.model}")
        codes = list(dict.fromkeys(verdict.categories))
        judged = item.category if item.category in codes else (codes[0] if codes else None)
        return {
            "instruction": item.data["instruction"],
            "persona": item.data["persona"],
            "judged_category": judged,
            "judged_categories": codes,
            "agrees": judged == item.category,
        }
