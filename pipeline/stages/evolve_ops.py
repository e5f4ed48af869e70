"""The LLM work of EvoRefuse: mutate and recombine (generator role), the safety judge (judge role), and
scoring on the target models (target role, one or several) with a refusal classifier."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from evaluators.fitness import LAMBDA, REFUSAL_FLOOR, fitness, mean_fitness, refusal_rate
from evaluators.refusal import ClassifierConfig, RefusalClassifier, RefusalConfig
from pipeline.config_model import ConfigModel
from pipeline.llm.client import LLMClient
from pipeline.llm.types import ChatRequest
from pipeline.prompts import load_prompt
from pipeline.stages.evolve_search import Made, Score, Strategy

JUDGE_MAX_TOKENS = 64  # room for {"verdict": "unsafe"} and a model's stray whitespace


class Rewrite(BaseModel):
    """What the mutator and the recombiner answer."""

    model_config = ConfigDict(extra="forbid")
    instruction: str = Field(min_length=1, max_length=2000)
    harmless_reason: str = Field(min_length=1, max_length=2000)


class Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdict: Literal["safe", "unsafe"]


class ScoringParams(ConfigModel):
    """How an instruction is scored: K responses per target model, a refusal classifier, F's lambda."""

    samples: int = Field(default=10, ge=1, description="K: responses sampled per target model")
    lam: float = Field(default=LAMBDA, ge=0, description="weight of the confidence term")
    refusal_floor: float = Field(default=REFUSAL_FLOOR, gt=0, lt=1)
    target_temperature: float = Field(default=1.0, ge=0, le=2)
    target_max_tokens: int = Field(default=256, ge=1)
    target_system_prompt: bool = Field(
        default=True,
        description="give the target EvoRefuse's conservative system prompt (as published); false: none",
    )
    classifier: RefusalConfig = Field(default_factory=lambda: ClassifierConfig(kind="classifier"))


class Scorer:
    """F(x) and refusal rates on every target model: n=K samples with token logprobs per target."""

    def __init__(self, targets: list[LLMClient], classifier: RefusalClassifier, params: ScoringParams):
        self.targets = targets
        self.classifier = classifier
        self.params = params
        self.template = load_prompt(
            "evolve_target_guarded" if params.target_system_prompt else "evolve_target"
        )
        models = [t.model for t in targets]
        self.names = [m if models.count(m) == 1 else f"{m}#{i}" for i, m in enumerate(models)]

    async def score(self, instruction: str, seed: int) -> Score:
        request = self.template.request(
            {"instruction": instruction},
            seed=seed,
            n=self.params.samples,
            temperature=self.params.target_temperature,
            max_tokens=self.params.target_max_tokens,
            logprobs=True,
        )
        results = await asyncio.gather(*(t.complete(request) for t in self.targets))
        per_target, rates = [], {}
        example, example_p = None, 0.0
        for name, result in zip(self.names, results, strict=True):
            logprobs = [s.token_logprobs for s in result.completion.samples]
            if any(lp is None for lp in logprobs):
                raise ValueError(f"target {name} returned no token logprobs; the fitness needs them")
            texts = result.texts
            probabilities = await self.classifier.probabilities([instruction] * len(texts), texts)
            per_target.append(fitness(probabilities, logprobs, self.params.lam, self.params.refusal_floor))
            rates[name] = refusal_rate(probabilities)
            top = max(range(len(texts)), key=lambda i: probabilities[i])
            if probabilities[top] >= 0.5 and probabilities[top] > example_p:
                example, example_p = texts[top], probabilities[top]
        f = mean_fitness(per_target)
        return Score(
            fitness=f.value,
            refusal_term=f.refusal_term,
            confidence_term=f.confidence_term,
            refusal_rate=sum(rates.values()) / len(rates),
            refusal_rates=rates,
            refusal_example=example,
        )


class LLMOperators:
    """`Operators` for one iteration of one seed's search. Every request's seed is `seed_for(tag)`
    (fixed by the run seed, the search and the iteration), so a rerun asks exactly the same
    questions and is answered from the cache."""

    def __init__(
        self,
        mutator: LLMClient,
        judge: LLMClient,
        scorer: Scorer,
        params: Any,
        seed_for: Callable[[str], int],
    ):
        self.mutator = mutator
        self.judge_llm = judge
        self.scorer = scorer
        self.params = params  # the evolve stage's params: generator temperature, top_p, max_tokens
        self.seed_for = seed_for

    def _request(
        self, name: str, tag: str, temperature: float, max_tokens: int, **values: Any
    ) -> ChatRequest:
        return load_prompt(name).request(
            values,
            seed=self.seed_for(tag),
            temperature=temperature,
            top_p=self.params.top_p if temperature else 1.0,
            max_tokens=max_tokens,
        )

    async def _rewrite(self, name: str, tag: str, **values: Any) -> Made:
        request = self._request(name, tag, self.params.temperature, self.params.max_tokens, **values)
        result = await self.mutator.complete(request, Rewrite)
        answer = result.value
        return Made(answer.instruction.strip(), answer.harmless_reason.strip(), result)

    async def mutate(self, instruction: str, strategy: Strategy, tag: str) -> Made:
        example = strategy.example(self.seed_for(f"example:{tag}"))
        return await self._rewrite(
            "evolve_mutate",
            tag,
            instruction=instruction,
            group=strategy.group,
            strategy=strategy.name,
            guidance=strategy.guidance,
            example=example,
        )

    async def recombine(self, first: str, second: str, tag: str) -> Made:
        return await self._rewrite("evolve_recombine", tag, first=first, second=second)

    async def judge(self, instruction: str, harmless_reason: str, tag: str) -> bool:
        reason = harmless_reason or "(no argument given)"
        request = self._request(
            "evolve_judge", tag, 0.0, JUDGE_MAX_TOKENS, instruction=instruction, harmless_reason=reason
        )
        return (await self.judge_llm.complete(request, Verdict)).value.verdict == "safe"

    async def score(self, instruction: str, tag: str) -> Score:
        return await self.scorer.score(instruction, self.seed_for(f"score:{tag}"))
