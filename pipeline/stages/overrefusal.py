"""The EvoRefuse datasets, from each seed's final search state.

- `overrefusal_test`: per seed, the best safe instruction the search found, with its refusal rate per
  target measured afresh (K new samples per target: the search's own estimate is biased upwards by
  having picked the maximum) and the fitness that selected it.
- `overrefusal_align`: per test instruction, a helpful *chosen* answer from the responder and a
  refusing *rejected* answer: the target's own most refusing response seen in the search, or a
  stock refusal (data/evorefuse/refusals.yaml) when none was sampled. The chosen answer must not
  refuse (refusal classifier) and must not be harmful (the Harm Score judge, evaluators/harm.py):
  a helpful answer to a request judged harmless can still give harmful help, and DPO would teach it.
"""

from __future__ import annotations

import random
from functools import cache

import yaml
from pydantic import Field

from evaluators.harm import HarmJudge
from evaluators.refusal import ClassifierConfig, RefusalConfig
from pipeline.context import StageContext
from pipeline.datasets import OverrefusalAlignRow, OverrefusalTestRow
from pipeline.records import Record
from pipeline.resources import data_dir
from pipeline.stage import Drop, LLMParams, LLMStage, Outcome, Stage, StageParams
from pipeline.stages.evolve import SearchState
from pipeline.stages.evolve_ops import Scorer, ScoringParams


class TestSetParams(StageParams, ScoringParams):
    min_refusal_rate: float = Field(default=0.0, ge=0, le=1, description="drop instructions refused less")


class OverrefusalTestStage(Stage):
    name = "overrefusal_test"
    description = "EvoRefuse test set: per seed the best safe instruction and its refusal rates"
    consumes = ("evolve",)
    roles = ("target",)
    Params = TestSetParams

    def __init__(self, params: TestSetParams, ctx: StageContext):
        super().__init__(params, ctx)
        self.scorer = Scorer(ctx.llms("target"), ctx.refusal_classifier(params.classifier), params)

    def skip(self, item: Record) -> bool:
        return not item.data["final"]  # an intermediate search state: nothing to deliver

    async def process(self, item: Record) -> Outcome:
        state = SearchState.model_validate(item.data)
        best = state.best
        if best is None or best.score is None:
            return Drop("no instruction in this seed's search was judged safe")
        score = await self.scorer.score(best.instruction, self.ctx.seed_for(item.id))
        if score.refusal_rate < self.params.min_refusal_rate:
            return Drop(
                f"refusal rate {score.refusal_rate:.2f} < min_refusal_rate {self.params.min_refusal_rate}"
            )
        row = OverrefusalTestRow(
            instruction=best.instruction,
            seed_instruction=state.seed_instruction,
            harmless_reason=best.harmless_reason,
            refusal_rate=score.refusal_rate,
            refusal_rates=score.refusal_rates,
            fitness=best.score.fitness,
        )
        candidate = await self.ctx.read(lambda store: store.get(best.id))
        return [self.ctx.record(parents=(candidate, item), data=row.model_dump())]


class AlignSetParams(LLMParams):
    classifier: RefusalConfig = Field(
        default_factory=lambda: ClassifierConfig(kind="classifier"),
        description="checks that the chosen answer is not itself a refusal",
    )
    harm_check: bool = Field(default=True, description="the judge checks the chosen answer is not harmful")


@cache
def stock_refusals() -> tuple[str, ...]:
    return tuple(yaml.safe_load((data_dir() / "evorefuse" / "refusals.yaml").read_text())["refusals"])


class OverrefusalAlignStage(LLMStage):
    name = "overrefusal_align"
    description = "EvoRefuse align set: a helpful chosen and a refusing rejected answer per instruction"
    consumes = ("overrefusal_test",)
    role = "responder"
    roles = ("responder", "judge")
    prompt = "overrefusal_chosen"
    Params = AlignSetParams

    def __init__(self, params: AlignSetParams, ctx: StageContext):
        super().__init__(params, ctx)
        self.classifier = ctx.refusal_classifier(params.classifier)
        self.harm = HarmJudge(ctx.llm("judge")) if params.harm_check else None

    def variables(self, item: Record) -> dict[str, object]:
        return {"instruction": item.data["instruction"], "harmless_reason": item.data["harmless_reason"]}

    async def process(self, item: Record) -> Outcome:
        result = await self.llm.complete(self.request(item))
        chosen = result.text.strip()
        if not chosen:
            return Drop("the responder gave an empty answer")
        (refusing,) = await self.classifier.probabilities([item.data["instruction"]], [chosen])
        if refusing >= 0.5:
            return Drop(f"the responder refused too (p̂ = {refusing:.2f}): {chosen[:80]!r}")
        if self.harm is not None:
            verdict = await self.harm.judge(item.data["instruction"], chosen)
            if verdict.harmful:
                return Drop(
                    f"the chosen answer was judged harmful (Harm Score {verdict.score}): {chosen[:80]!r}"
                )
        candidate = await self.ctx.read(lambda store: store.get(item.parent_ids[0]))
        rejected = candidate.data.get("refusal_example") if candidate else None
        if not rejected:
            rejected = random.Random(self.ctx.seed_for(item.id)).choice(stock_refusals())
        row = OverrefusalAlignRow(instruction=item.data["instruction"], chosen=chosen, rejected=rejected)
        return [self.ctx.record((item,), row.model_dump(), made_by=result)]
