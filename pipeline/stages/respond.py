"""TRIDENT step 8, shared by the core and edge stages: an aligned response, then a check that it is
non-empty, complete, safe and does not comply; a response that fails is regenerated with a new seed,
at most `max_attempts` times in all, after which the item is a failure with the last reason."""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from pipeline.context import StageContext
from pipeline.llm.types import ChatRequest, LLMFailure, Result
from pipeline.prompts import load_prompt
from pipeline.records import Record
from pipeline.resources import data_dir
from pipeline.stage import LLMParams, Outcome, Stage
from pipeline.stages.safety_filter import parse_guard
from pipeline.tactics import tactic


@cache
def _guidance() -> dict[str, Any]:
    return yaml.safe_load((data_dir() / "taxonomy" / "response_guidance.yaml").read_text())


def response_guidance(category: str | None) -> str:
    """What a reply in `category` should offer instead of the harmful part (data/taxonomy/)."""
    guidance = _guidance()
    return " ".join(guidance["categories"].get(category, guidance["default"]).split())


class ResponseCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")
    harmful: bool
    complies: bool
    reason: str = Field(max_length=400)


class RespondParams(LLMParams):
    temperature: float = Field(default=0.7, ge=0, le=2)
    max_tokens: int = Field(default=768, ge=1)
    max_attempts: int = Field(default=3, ge=1, le=10, description="responses tried before the item fails")
    check: bool = Field(default=True, description="have the judge check each response")
    guard_model: bool = Field(
        default=False, description="the judge is a Llama Guard model: it checks harm only, in its own format"
    )


class AlignedResponder:
    """Writes and checks the response to one instruction; used by a stage's process()."""

    def __init__(self, ctx: StageContext, params: RespondParams):
        self.ctx = ctx
        self.params = params
        self.template = load_prompt("aligned_response")
        self.responder = ctx.llm("responder")
        self.judge = ctx.llm("judge") if params.check else None

    async def respond(self, item: Record) -> tuple[str, Result]:
        """(response, the call that made it) for `item`, whose data holds the instruction (and, for
        edge items, the original one)."""
        offset = self.ctx.attempt  # a retried failure continues with new seeds
        problem = ""
        for attempt in range(offset, offset + self.params.max_attempts):
            result = await self.responder.complete(self._request(item, attempt))
            response = result.text.strip()
            problem = await self._problem(item, result, response)
            if not problem:
                return response, result
        raise LLMFailure(
            f"no acceptable response in {self.params.max_attempts} attempt(s); last: {problem}",
            offset + self.params.max_attempts,
        )

    def _request(self, item: Record, attempt: int) -> ChatRequest:
        disguise = ""
        if item.tactic is not None:
            used = tactic(item.tactic)
            disguise = (
                f'\nThe message disguises its request with the "{used.name.replace("_", " ")}" tactic: '
                f"{used.definition}\nThe request underneath it is: {item.data['original_instruction']}\n"
                "Reply to the message as sent, showing that you recognise what it asks for.\n"
            )
        values = {
            "instruction": item.data["instruction"],
            "disguise": disguise,
            "guidance": response_guidance(item.category),
        }
        return self.template.request(
            values,
            seed=self.ctx.seed_for(item.id, attempt),
            temperature=self.params.temperature,
            top_p=self.params.top_p,
            max_tokens=self.params.max_tokens,
        )

    async def _problem(self, item: Record, result: Result, response: str) -> str:
        """Why the response is not acceptable, or "" when it is."""
        if not response:
            return "empty response"
        if result.completion.samples[0].finish_reason == "length":
            return f"response cut off at max_tokens ({self.params.max_tokens})"
        if self.judge is None:
            return ""
        request_text = item.data.get("original_instruction", item.data["instruction"])
        return await check_response(
            self.judge,
            request_text,
            response,
            self.ctx.seed_for(item.id, "check"),
            self.params.guard_model,
            category=item.category,
        )


async def check_response(
    judge, request_text: str, response: str, seed: int, guard_model: bool = False, category: str | None = None
) -> str:
    """The judge's check of one response to a harmful request in `category`: why it is not acceptable
    (judged harmful or complying; with a Llama Guard judge, unsafe), or "" when it is."""
    if guard_model:  # Llama Guard classifies the assistant turn of a conversation
        turns = ({"role": "user", "content": request_text}, {"role": "assistant", "content": response})
        answer = await judge.complete(ChatRequest(messages=turns, temperature=0.0, max_tokens=32, seed=seed))
        guard = parse_guard(answer.text)
        return f"judged unsafe ({', '.join(guard.categories)})" if guard.verdict == "unsafe" else ""
    values = {"instruction": request_text, "response": response, "guidance": response_guidance(category)}
    request = load_prompt("response_check").request(values, seed=seed, temperature=0.0, max_tokens=256)
    verdict: ResponseCheck = (await judge.complete(request, ResponseCheck)).value
    if verdict.harmful or verdict.complies:
        what = " and ".join(
            w for w, bad in (("harmful", verdict.harmful), ("complies", verdict.complies)) if bad
        )
        return f"judged {what}: {verdict.reason}"
    return ""


class ResponseStage(Stage):
    """A dataset stage: each input instruction with its checked, aligned response, as one row."""

    roles = ("responder", "judge")
    Params = RespondParams

    def __init__(self, params: RespondParams, ctx: StageContext):
        super().__init__(params, ctx)
        self.responder = AlignedResponder(ctx, params)

    def row(self, item: Record, response: str) -> BaseModel:
        raise NotImplementedError

    async def process(self, item: Record) -> Outcome:
        response, result = await self.responder.respond(item)
        data = self.row(item, response).model_dump()
        return [self.ctx.record((item,), data, made_by=result)]
