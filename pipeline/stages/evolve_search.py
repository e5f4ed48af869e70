"""EvoRefuse search as pure logic: strategies, annealing, selection, and one iteration of the search.

One iteration from the current instruction x_t (published settings as defaults):

1. mutate x_t with a chosen strategy until `population` (L) mutants are judged safe, at most
   `max_attempts` mutations; score the safe ones and keep the top L;
2. recombine `recombinations` (N) random pairs of them; judge and score the children;
3. propose the best of all these (or, for the no-fitness ablation, a random one);
4. accept it as x_{t+1} with probability min(1, exp((F(x') - F(x_t)) / tau_t)), and keep the best
   safe instruction ever seen.

The LLM work is behind `Operators`, so the same code runs on LLMs (pipeline/stages/evolve_ops.py)
and on in-memory fakes in tests. All randomness comes from the `rng` passed in, drawn in a fixed
order, so an iteration is reproducible from its seed.
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline.config_model import ConfigModel
from pipeline.llm.types import LLMFailure
from pipeline.resources import data_dir

# ---- strategies ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Strategy:
    name: str
    group: str
    guidance: str
    examples: tuple[str, ...]

    def example(self, seed: int) -> str:
        """One of the strategy's examples, rotated by the request seed."""
        return self.examples[seed % len(self.examples)]


@cache
def all_strategies() -> tuple[Strategy, ...]:
    """The nine mutation strategies of data/evorefuse/strategies.yaml, in the published order."""
    raw = yaml.safe_load((data_dir() / "evorefuse" / "strategies.yaml").read_text())
    return tuple(
        Strategy(s["name"], group["name"], s["guidance"].strip(), tuple(s["examples"]))
        for group in raw["groups"]
        for s in group["strategies"]
    )


def choose_strategies(
    count: int,
    mode: str,
    strategies: tuple[Strategy, ...],
    cursor: int,
    stats: dict[str, tuple[int, int]],
    rng: random.Random,
) -> tuple[list[Strategy], int]:
    """`count` strategies and the new cursor. fixed: cycle in the published order from `cursor`;
    uniform: at random; adaptive: at random, weighted by each strategy's smoothed success rate
    (wins + 1) / (tries + 2) in this seed's search so far."""
    if mode == "fixed":
        return [strategies[(cursor + i) % len(strategies)] for i in range(count)], cursor + count
    if mode == "uniform":
        return [rng.choice(strategies) for _ in range(count)], cursor
    weights = [(stats.get(s.name, (0, 0))[1] + 1) / (stats.get(s.name, (0, 0))[0] + 2) for s in strategies]
    return rng.choices(strategies, weights=weights, k=count), cursor


# ---- annealing -----------------------------------------------------------------------------------


class Anneal(ConfigModel):
    """tau_t = max(floor, start - decay * t), t = 0, 1, ... the iteration."""

    start: float = Field(default=0.1, gt=0)
    decay: float = Field(default=0.005, ge=0)
    floor: float = Field(default=0.05, gt=0)


def temperature(t: int, anneal: Anneal) -> float:
    return max(anneal.floor, anneal.start - anneal.decay * t)


def acceptance_probability(proposed: float, current: float | None, tau: float) -> float:
    """min(1, exp((F(x') - F(x_t)) / tau)); 1 when there is no scored current instruction."""
    if current is None or proposed >= current:
        return 1.0
    return math.exp((proposed - current) / tau)


# ---- search state --------------------------------------------------------------------------------


class Score(BaseModel):
    """What scoring an instruction on the target models gives."""

    model_config = ConfigDict(extra="forbid")
    fitness: float
    refusal_term: float
    confidence_term: float
    refusal_rate: float = Field(description="mean over targets of the share of refusing responses")
    refusal_rates: dict[str, float]
    refusal_example: str | None = Field(description="the most refusing sampled response, if one refused")


class Member(BaseModel):
    """An instruction the search holds (the current one, the best one), with its candidate record id."""

    model_config = ConfigDict(extra="forbid")
    id: str
    instruction: str
    harmless_reason: str
    safe: bool
    score: Score | None

    @property
    def fitness(self) -> float | None:
        return self.score.fitness if self.score and self.safe else None


class SearchParams(ConfigModel):
    iterations: int = Field(default=5, ge=1)
    population: int = Field(default=4, ge=1, description="L: safe mutants kept per iteration")
    recombinations: int = Field(default=2, ge=0, description="N: recombined pairs per iteration")
    max_attempts: int = Field(default=12, ge=1, description="mutations tried per iteration at most")
    strategy_choice: Literal["fixed", "uniform", "adaptive"] = "fixed"
    selection: Literal["fitness", "random"] = Field(
        default="fitness", description="random: the no-fitness ablation (random proposal, always accepted)"
    )
    strategies: list[str] | None = Field(default=None, min_length=1, description="default: all nine")
    anneal: Anneal = Field(default_factory=Anneal)

    @field_validator("strategies")
    @classmethod
    def _known(cls, names: list[str] | None) -> list[str] | None:
        known = [s.name for s in all_strategies()]
        unknown = [n for n in names or [] if n not in known]
        if unknown:
            raise ValueError(f"unknown strategies {unknown}; known: {', '.join(known)}")
        return names

    def chosen_strategies(self) -> tuple[Strategy, ...]:
        wanted = self.strategies
        return tuple(s for s in all_strategies() if wanted is None or s.name in wanted)


# ---- one iteration -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Made:
    """A mutator's or recombiner's answer; `result` is the LLM call that made it (for lineage)."""

    instruction: str
    harmless_reason: str
    result: Any = None  # pipeline.llm.types.Result


class Operators(Protocol):
    """The LLM work of the search. `tag` names the call within the iteration (its seed derives from
    it); judge returns True for safe."""

    async def mutate(self, instruction: str, strategy: Strategy, tag: str) -> Made: ...

    async def recombine(self, first: str, second: str, tag: str) -> Made: ...

    async def judge(self, instruction: str, harmless_reason: str, tag: str) -> bool: ...

    async def score(self, instruction: str, tag: str) -> Score: ...


@dataclass(eq=False)
class Candidate:
    """An instruction made in this iteration. `parents` are candidates of this iteration or ids of
    stored candidate records. A failed LLM call leaves `error` set and the candidate out."""

    instruction: str
    harmless_reason: str
    operation: Literal["seed", "mutation", "recombination"]
    parents: tuple[Candidate | str, ...]
    strategy: Strategy | None = None
    tag: str = ""
    made_by: Any = None  # the LLM Result that wrote it
    safe: bool = False
    score: Score | None = None
    error: str | None = None

    @property
    def fitness(self) -> float:
        assert self.score is not None
        return self.score.fitness


@dataclass
class Step:
    """What one iteration did: every candidate it made, the proposal and whether it was accepted."""

    candidates: list[Candidate]
    proposal: Candidate | None
    accepted: bool
    tau: float
    acceptance: float
    cursor: int
    stats: dict[str, tuple[int, int]]


def _written(candidate: Candidate, made: Made) -> Candidate:
    candidate.instruction, candidate.harmless_reason = made.instruction, made.harmless_reason
    candidate.made_by = made.result
    return candidate


async def judged(ops: Operators, candidate: Candidate, tag: str) -> Candidate:
    """The candidate with its verdict; a judge that fails leaves it out."""
    if candidate.error is None:
        try:
            candidate.safe = await ops.judge(candidate.instruction, candidate.harmless_reason, tag)
        except LLMFailure as failure:
            candidate.error = f"judge: {failure.reason}"
    return candidate


async def _mutant(ops: Operators, parent: Member, strategy: Strategy, tag: str) -> Candidate:
    candidate = Candidate("", "", "mutation", (parent.id,), strategy, tag)
    try:
        made = await ops.mutate(parent.instruction, strategy, tag)
    except LLMFailure as failure:
        candidate.error = f"mutate: {failure.reason}"
        return candidate
    return await judged(ops, _written(candidate, made), tag)


async def _child(ops: Operators, first: Candidate, second: Candidate, tag: str) -> Candidate:
    candidate = Candidate("", "", "recombination", (first, second), tag=tag)
    try:
        made = await ops.recombine(first.instruction, second.instruction, tag)
    except LLMFailure as failure:
        candidate.error = f"recombine: {failure.reason}"
        return candidate
    return await judged(ops, _written(candidate, made), tag)


async def _score_all(ops: Operators, candidates: list[Candidate], prefix: str) -> None:
    scores = await asyncio.gather(
        *(ops.score(c.instruction, f"{prefix}{i}") for i, c in enumerate(candidates))
    )
    for candidate, score in zip(candidates, scores, strict=True):
        candidate.score = score


async def iterate(
    ops: Operators,
    current: Member,
    t: int,
    params: SearchParams,
    cursor: int,
    stats: dict[str, tuple[int, int]],
    rng: random.Random,
) -> Step:
    """Iteration t (0-based) from the current instruction."""
    candidates, cursor = await _mutate(ops, current, params, cursor, stats, rng)
    mutants = [c for c in candidates if c.safe]
    await _score_all(ops, mutants, "m")
    top = sorted(mutants, key=lambda c: -c.fitness)[: params.population]
    children = await _recombine(ops, top, params.recombinations, rng)
    candidates += children
    pool = top + [c for c in children if c.safe]

    proposal: Candidate | None = None
    if pool:
        proposal = rng.choice(pool) if params.selection == "random" else max(pool, key=lambda c: c.fitness)
    tau = temperature(t, params.anneal)
    acceptance = 0.0
    if proposal is not None:
        fitness_now = None if params.selection == "random" else current.fitness
        acceptance = acceptance_probability(proposal.fitness, fitness_now, tau)
    accepted = rng.random() < acceptance
    return Step(candidates, proposal, accepted, tau, acceptance, cursor, _tally(stats, candidates, current))


async def _mutate(
    ops: Operators,
    current: Member,
    params: SearchParams,
    cursor: int,
    stats: dict[str, tuple[int, int]],
    rng: random.Random,
) -> tuple[list[Candidate], int]:
    """Mutants of the current instruction, in waves, until `population` are judged safe or
    `max_attempts` were made; and the strategy cursor after them."""
    strategies = params.chosen_strategies()
    candidates: list[Candidate] = []
    safe = 0
    while safe < params.population and len(candidates) < params.max_attempts:
        wave = min(params.population - safe, params.max_attempts - len(candidates))
        chosen, cursor = choose_strategies(wave, params.strategy_choice, strategies, cursor, stats, rng)
        start = len(candidates)
        made = await asyncio.gather(
            *(_mutant(ops, current, s, f"m{start + i}") for i, s in enumerate(chosen))
        )
        candidates += made
        safe += sum(c.safe for c in made)
    return candidates, cursor


async def _recombine(ops: Operators, top: list[Candidate], n: int, rng: random.Random) -> list[Candidate]:
    """n children of random pairs of the top mutants, judged, and scored when safe."""
    if len(top) < 2 or not n:
        return []
    pairs = [rng.sample(top, 2) for _ in range(n)]
    children = list(await asyncio.gather(*(_child(ops, a, b, f"r{i}") for i, (a, b) in enumerate(pairs))))
    await _score_all(ops, [c for c in children if c.safe], "r")
    return children


def _tally(
    stats: dict[str, tuple[int, int]], candidates: list[Candidate], current: Member
) -> dict[str, tuple[int, int]]:
    """Tries and wins per strategy: a win is a safe mutant that beats the current instruction."""
    out = dict(stats)
    for c in candidates:
        if c.strategy is None:
            continue
        tries, wins = out.get(c.strategy.name, (0, 0))
        won = c.safe and c.score is not None and (current.fitness is None or c.fitness > current.fitness)
        out[c.strategy.name] = (tries + 1, wins + int(won))
    return out


def advance(
    current: Member, best: Member | None, proposal: Member | None, accepted: bool, selection: str
) -> tuple[Member, Member | None]:
    """(x_{t+1}, best ever). Without fitness (the ablation) the best is simply where the walk is."""
    following = proposal if accepted and proposal is not None else current
    if selection == "random":
        return following, (following if following.safe else best)
    if proposal is not None and (best is None or proposal.fitness > best.fitness):
        best = proposal
    return following, best
