"""TRIDENT-Edge step 6: each planned (instruction, tactic) rewritten. Code tactics (ciphers, code
injection) are deterministic transforms; llm tactics are rewritten by the generator following the
tactic's definition and application, then any transform of the tactic is applied (ReNeLLM nests).

An llm rewrite is checked before it is kept: a rewrite the generator refused to write is dropped
(pipeline/stages/refusals.py), and so is one that lost the request. The judge compares the rewrite
with the original on its decoded text (the rewrite before any transform is applied; a code tactic
alone cannot lose the request) and, for low-resource languages, on its translation back into English.
"""

from __future__ import annotations

import string

from pydantic import BaseModel, ConfigDict, Field

from evaluators.dedup import normalise
from pipeline.context import StageContext
from pipeline.prompts import load_prompt
from pipeline.records import Record
from pipeline.refusal_accounting import LOST
from pipeline.stage import Drop, LLMStage, Outcome
from pipeline.stages.refusals import RefusalCheck, RefusalCheckParams
from pipeline.tactics import Tactic, tactic
from pipeline.tactics.transforms import TRANSFORMS

BACK_TRANSLATED = ("low_resource_language",)  # tactics whose rewrite is checked in English


class RewriteAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rewritten: str = Field(min_length=1, max_length=4000)


class RewriteCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keeps_request: bool
    reason: str = Field(max_length=400)


class BackTranslation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    english: str = Field(min_length=1, max_length=4000)


class RewriteParams(RefusalCheckParams):
    check_request: bool = Field(default=True, description="the judge checks an llm rewrite keeps the request")


class RewriteStage(LLMStage):
    name = "rewrite"
    description = "rewrite each planned instruction with its tactic (code transform or LLM rewrite)"
    consumes = ("tactics",)
    roles = ("generator", "judge")
    prompt = "tactic_rewrite"
    Answer = RewriteAnswer
    Params = RewriteParams

    def __init__(self, params: RewriteParams, ctx: StageContext):
        super().__init__(params, ctx)
        self.refusals = RefusalCheck(self, params)
        self.judge = ctx.llm("judge") if params.check_request else None

    def variables(self, item: Record) -> dict[str, object]:
        used = tactic(item.tactic)
        application = string.Template(used.application).safe_substitute(variant=item.data["variant"])
        return {
            "tactic": used.name.replace("_", " "),
            "definition": used.definition,
            "application": application,
            "instruction": item.data["instruction"],
        }

    async def process(self, item: Record) -> Outcome:
        used = tactic(item.tactic)
        text, result = item.data["instruction"], None
        if used.kind == "llm":
            result = await self.llm.complete(self.request(item), RewriteAnswer)
            text = result.value.rewritten.strip()
            if normalise(text) == normalise(item.data["instruction"]):
                return Drop(f"the {used.name} rewrite left the instruction unchanged")
            (refused,) = await self.refusals.refused(result, [text])
            if refused is not None:
                return self.refusals.drop(item, result, {0: (text, refused)})
            lost = await self._lost(item, used, text)
            if lost:
                return Drop(f"{LOST} ({used.name}): {lost}")
        if used.transform is not None:
            text = TRANSFORMS[used.transform](text, item.data["variant"])
        data = {
            "instruction": text,
            "original_instruction": item.data["instruction"],
            "persona": item.data["persona"],
            "judged_category": item.data["judged_category"],
            "variant": item.data["variant"],
        }
        return [self.ctx.record((item,), data, made_by=result)]  # a code tactic alone: no call

    async def _lost(self, item: Record, used: Tactic, rewrite: str) -> str:
        """Why the (decoded) rewrite no longer asks what the original asks, or "" when it does."""
        if self.judge is None:
            return ""
        note = ""
        if used.name in BACK_TRANSLATED:
            english = await self._ask(item, "back_translate", BackTranslation, language=item.data["variant"],
                                      text=rewrite)  # fmt: skip
            rewrite, note = english.english, f", shown here translated back from {item.data['variant']}"
        verdict = await self._ask(
            item, "rewrite_check", RewriteCheck, original=item.data["instruction"], rewrite=rewrite,
            tactic=used.name.replace("_", " "), note=note,
        )  # fmt: skip
        return "" if verdict.keeps_request else verdict.reason or "judged to ask something else"

    async def _ask(self, item: Record, prompt: str, schema: type[BaseModel], **values: object) -> BaseModel:
        request = load_prompt(prompt).request(
            values,
            seed=self.ctx.seed_for(item.id, prompt),
            temperature=0.0,
            max_tokens=1024 if prompt == "back_translate" else 256,
        )
        return (await self.judge.complete(request, schema)).value
