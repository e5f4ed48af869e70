"""The stages of an eval run (`safeset eval`), run by the ordinary runner, so an eval is cached,
concurrent, resumable, and its failures are rows like any run's:

    eval_prompts  (source)  one item per eval-set prompt and target model
    eval_answers  (target)  the target's answer
    eval_refusal  (no LLM)  refusal by the calibrated classifier, phrase lists or the embedding classifier
    eval_judge    (judge)   refusal by an LLM judge, and for harmful prompts the Harm Score verdict

Each record carries the set, label, target and prompt along, so the metrics read verdicts alone.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from pydantic import Field, field_validator

from evaluators.harm import HarmJudge
from evaluators.refusal import (
    ClassifierConfig,
    EmbeddingConfig,
    JudgeConfig,
    PrefixConfig,
    SubstringConfig,
)
from pipeline.eval.sets import EvalSet, load_set
from pipeline.llm.types import ChatRequest
from pipeline.records import Record
from pipeline.stage import LLMParams, Outcome, Stage, StageParams

_VERDICT_KEYS = ("set", "label", "target", "target_model")  # what the metrics group verdicts by
_CARRIED = (*_VERDICT_KEYS, "prompt")


class PromptsParams(StageParams):
    sets: dict[str, EvalSet] = Field(min_length=1, description="eval sets by name")


class EvalPromptsStage(Stage):
    name = "eval_prompts"
    description = "one item per eval-set prompt and target model"
    roles = ("target",)
    Params = PromptsParams

    def plan(self) -> list[Record]:
        targets = [client.model for client in self.ctx.llms("target")]
        records = []
        for set_name, spec in self.params.sets.items():
            if spec.generated:
                items = self.ctx.read_blocking(lambda store, n=set_name, s=spec: load_set(n, s, store))
            else:
                items = load_set(set_name, spec, None)
            for item in items:
                for index, model in enumerate(targets):
                    data = {"set": item.set, "item": item.key, "label": item.label, "prompt": item.prompt,
                            "target": index, "target_model": model}  # fmt: skip
                    records.append(self.ctx.record((), data, category=item.category, tactic=item.tactic))
        return records


class AnswersParams(LLMParams):
    temperature: float = Field(default=0.0, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    system: str | None = Field(default=None, description="a system prompt for every target call")


class EvalAnswersStage(Stage):
    name = "eval_answers"
    description = "each target model's answer to each eval prompt"
    consumes = ("eval_prompts",)
    roles = ("target",)
    Params = AnswersParams

    def __init__(self, params: AnswersParams, ctx):
        super().__init__(params, ctx)
        self.targets = ctx.llms("target")

    async def process(self, item: Record) -> Outcome:
        messages = [{"role": "user", "content": item.data["prompt"]}]
        if self.params.system:
            messages.insert(0, {"role": "system", "content": self.params.system})
        request = ChatRequest(
            messages=tuple(messages),
            temperature=self.params.temperature,
            top_p=self.params.top_p,
            max_tokens=self.params.max_tokens,
            seed=self.ctx.seed_for(item.id),
        )
        result = await self.targets[item.data["target"]].complete(request)
        sample = result.completion.samples[0]
        data = {
            **{k: item.data[k] for k in _CARRIED},
            "answer": sample.text,
            "finish_reason": sample.finish_reason,
        }
        return [self.ctx.record((item,), data, made_by=result)]


RefusalClassifierConfig = Annotated[
    ClassifierConfig | PrefixConfig | SubstringConfig | EmbeddingConfig, Field(discriminator="kind")
]


def default_classifiers() -> list:
    """The calibrated classifier (validated on real responses; README), then XSTest's string match."""
    return [ClassifierConfig(kind="classifier"), PrefixConfig(kind="prefix")]


class RefusalParams(StageParams):
    classifiers: list[RefusalClassifierConfig] = Field(default_factory=default_classifiers, min_length=1)

    @field_validator("classifiers")
    @classmethod
    def _one_of_each_kind(cls, classifiers: list) -> list:
        kinds = [c.kind for c in classifiers]
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"one classifier of each kind; got {kinds} (metrics are named by kind)")
        return classifiers


class EvalRefusalStage(Stage):
    """Runs once all answers are in, so the classifiers see them in one batch."""

    name = "eval_refusal"
    description = "refusal of each answer by the offline classifiers"
    consumes = ("eval_answers",)
    barrier = True
    Params = RefusalParams

    def process_all(self, items: list[Record]) -> dict[str, Outcome]:
        prompts = [item.data["prompt"] for item in items]
        answers = [item.data["answer"] for item in items]
        scores: dict[str, list[float]] = {}
        for config in self.params.classifiers:
            classifier = self.ctx.refusal_classifier(config)
            scores[config.kind] = asyncio.run(classifier.probabilities(prompts, answers))
        return {
            item.id: [
                self.ctx.record(
                    (item,),
                    {
                        **{k: item.data[k] for k in _VERDICT_KEYS},
                        "refusal": {k: v[i] for k, v in scores.items()},
                    },
                )
            ]
            for i, item in enumerate(items)
        }


class JudgeParams(StageParams):
    refusal: JudgeConfig | None = Field(
        default_factory=lambda: JudgeConfig(kind="judge"), description="the refusal judge; null: none"
    )
    harm: bool = Field(default=True, description="Harm Score verdicts on answers to harmful prompts")
    max_tokens: int = Field(default=64, ge=8)


class EvalJudgeStage(Stage):
    name = "eval_judge"
    description = "refusal judged by an LLM, and the Harm Score verdict for harmful prompts"
    consumes = ("eval_answers",)
    roles = ("judge",)
    Params = JudgeParams

    def __init__(self, params: JudgeParams, ctx):
        super().__init__(params, ctx)
        self.llm = ctx.llm("judge")
        self.refusal = ctx.refusal_classifier(params.refusal) if params.refusal else None
        self.harm = HarmJudge(self.llm, max_tokens=params.max_tokens) if params.harm else None

    async def process(self, item: Record) -> Outcome:
        prompt, answer = item.data["prompt"], item.data["answer"]
        data = {k: item.data[k] for k in _VERDICT_KEYS}
        if self.refusal is not None:
            data["refusal_judge"] = (await self.refusal.probabilities([prompt], [answer]))[0]
        if self.harm is not None and item.data["label"] == "harmful":
            verdict = await self.harm.judge(prompt, answer)
            data.update(harm_score=verdict.score, harmful=verdict.harmful)
        return [self.ctx.record((item,), data, model=self.llm.model)]


EVAL_STAGES: list[type[Stage]] = [EvalPromptsStage, EvalAnswersStage, EvalRefusalStage, EvalJudgeStage]
