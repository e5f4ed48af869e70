"""The EvoRefuse search logic on in-memory operators: bounded mutation, selection, recombination,
strategy choice, annealing and the best-ever rule, without LLMs or a database."""

from __future__ import annotations

import asyncio
import random

import pytest
from pydantic import ValidationError

from pipeline.llm.types import LLMFailure
from pipeline.stages.evolve_search import (
    Made,
    Member,
    Score,
    SearchParams,
    advance,
    all_strategies,
    choose_strategies,
    iterate,
)


def score_of(fitness: float) -> Score:
    return Score(
        fitness=fitness,
        refusal_term=fitness,
        confidence_term=0.0,
        refusal_rate=0.0,
        refusal_rates={"m": 0.0},
        refusal_example=None,
    )


class FakeOps:
    """A mutant appends its strategy's name; fitness counts the words 'alarm'; the judge calls
    anything with 'BAD' unsafe; recombination joins both. Failures can be planted by tag."""

    def __init__(self, unsafe_tags=(), fail_tags=(), alarming=("violent_words", "anger")):
        self.unsafe_tags = set(unsafe_tags)
        self.fail_tags = set(fail_tags)
        self.alarming = set(alarming)
        self.calls: list[str] = []

    async def mutate(self, instruction, strategy, tag):
        self.calls.append(f"mutate:{tag}")
        if tag in self.fail_tags:
            raise LLMFailure("broke the schema", 3)
        word = "alarm" if strategy.name in self.alarming else "calm"
        bad = " BAD" if tag in self.unsafe_tags else ""
        return Made(f"{instruction} {word}{bad}", f"because {strategy.name}")

    async def recombine(self, first, second, tag):
        self.calls.append(f"recombine:{tag}")
        return Made(f"{first} | {second}", "both are harmless")

    async def judge(self, instruction, harmless_reason, tag):
        self.calls.append(f"judge:{tag}")
        return "BAD" not in instruction

    async def score(self, instruction, tag):
        self.calls.append(f"score:{tag}")
        return score_of(float(instruction.count("alarm")))


def seed(fitness: float | None = 0.0) -> Member:
    score = score_of(fitness) if fitness is not None else None
    return Member(id="seed", instruction="x", harmless_reason="", safe=fitness is not None, score=score)


def step(ops, current=None, t=0, cursor=0, stats=None, rng=None, **params):
    return asyncio.run(
        iterate(
            ops,
            current or seed(),
            t,
            SearchParams(**params),
            cursor,
            stats or {},
            rng or random.Random(0),
        )
    )


def test_nine_strategies_in_three_groups_in_the_published_order():
    strategies = all_strategies()
    assert [s.group for s in strategies] == ["deceptive_context"] * 3 + ["sensitive_words"] * 3 + [
        "extreme_emotion"
    ] * 3
    assert [s.name for s in strategies][:2] == ["controversial_topic", "imaginary_scenario"]
    assert all(s.guidance and len(s.examples) >= 3 for s in strategies)
    violent = next(s for s in strategies if s.name == "violent_words")
    assert {violent.example(seed) for seed in range(3)} == set(violent.examples)  # rotated by seed


def test_collects_population_safe_mutants_then_recombines_and_proposes_the_best():
    ops = FakeOps(unsafe_tags={"m1"})
    result = step(ops, population=4, recombinations=2)
    mutants = [c for c in result.candidates if c.operation == "mutation"]
    assert [c.tag for c in mutants] == ["m0", "m1", "m2", "m3", "m4"]  # m1 unsafe: one more attempt
    assert [c.safe for c in mutants] == [True, False, True, True, True]
    assert sum(c.operation == "recombination" for c in result.candidates) == 2
    assert all(c.score is not None for c in result.candidates if c.safe)
    assert not any(c.score for c in result.candidates if not c.safe)  # unsafe ones are never scored
    pool = [c for c in result.candidates if c.safe]
    assert result.proposal.fitness == max(c.fitness for c in pool)
    assert result.accepted and result.acceptance == 1.0  # better than the seed (0)


def test_mutation_attempts_are_bounded():
    ops = FakeOps(unsafe_tags={f"m{i}" for i in range(100)})
    result = step(ops, population=4, max_attempts=7)
    assert len(result.candidates) == 7 and not any(c.safe for c in result.candidates)
    assert result.proposal is None and not result.accepted
    assert not any(call.startswith(("score", "recombine")) for call in ops.calls)


def test_failed_calls_spend_attempts_and_leave_the_candidate_out():
    ops = FakeOps(fail_tags={"m0", "m2"})
    result = step(ops, population=2, recombinations=0, max_attempts=3)
    assert [(c.tag, c.error) for c in result.candidates] == [
        ("m0", "mutate: broke the schema"),
        ("m1", None),
        ("m2", "mutate: broke the schema"),
    ]
    assert result.proposal.tag == "m1"


def test_no_recombination_ablation_makes_no_children():
    ops = FakeOps()
    result = step(ops, recombinations=0)
    assert {c.operation for c in result.candidates} == {"mutation"}
    assert not any(call.startswith("recombine") for call in ops.calls)


def test_children_recombine_two_distinct_members_of_the_top():
    ops = FakeOps()
    result = step(ops, population=3, recombinations=5)
    top = [c for c in result.candidates if c.operation == "mutation"]
    for child in (c for c in result.candidates if c.operation == "recombination"):
        first, second = child.parents
        assert first in top and second in top and first is not second


def test_fixed_strategy_order_continues_across_iterations():
    strategies = all_strategies()
    first, cursor = choose_strategies(4, "fixed", strategies, 0, {}, random.Random(0))
    second, cursor = choose_strategies(7, "fixed", strategies, cursor, {}, random.Random(0))
    names = [s.name for s in first + second]
    assert names == [s.name for s in strategies] + [strategies[0].name, strategies[1].name]
    assert cursor == 11


def test_uniform_and_adaptive_strategy_choice():
    strategies = all_strategies()
    uniform, _ = choose_strategies(900, "uniform", strategies, 0, {}, random.Random(1))
    counts = {s.name: 0 for s in strategies}
    for s in uniform:
        counts[s.name] += 1
    assert min(counts.values()) > 70  # ~100 each
    stats = {"anger": (10, 10), "despair": (10, 0)}  # anger always won, despair never
    adaptive, _ = choose_strategies(900, "adaptive", strategies, 0, stats, random.Random(1))
    picked = [s.name for s in adaptive]
    assert picked.count("anger") > 2 * picked.count("despair")


def test_adaptive_stats_count_tries_and_wins_per_strategy():
    result = step(FakeOps(), population=4, recombinations=0, strategy_choice="fixed")
    # fixed order: controversial_topic, imaginary_scenario, harmful_context, violent_words
    assert result.stats == {
        "controversial_topic": (1, 0),
        "imaginary_scenario": (1, 0),
        "harmful_context": (1, 0),
        "violent_words": (1, 1),  # its mutant says "alarm": fitness 1 > 0
    }


class FixedDraw(random.Random):
    """A generator whose uniform draws are all `u` (for the acceptance test)."""

    def __init__(self, u: float):
        super().__init__(0)
        self.u = u

    def random(self) -> float:
        return self.u


@pytest.mark.parametrize(("u", "accepted"), [(0.36, True), (0.38, False)])
def test_a_worse_proposal_is_accepted_with_probability_exp_delta_over_tau(u, accepted):
    # Every mutant is "calm" (fitness 0); the current instruction has fitness 0.1: delta = -0.1,
    # tau_0 = 0.1, so the acceptance probability is exp(-1) = 0.3679.
    ops = FakeOps(alarming=())
    result = step(ops, current=seed(0.1), rng=FixedDraw(u), recombinations=0)
    assert result.acceptance == pytest.approx(0.36788, abs=1e-5)
    assert result.accepted is accepted


def test_the_schedule_cools_with_the_iteration():
    ops = FakeOps(alarming=())
    late = step(ops, current=seed(0.1), t=4, rng=FixedDraw(0.5), recombinations=0)
    assert late.tau == pytest.approx(0.08)
    assert late.acceptance == pytest.approx(0.28650, abs=1e-5)  # exp(-0.1 / 0.08)


def test_an_unsafe_seed_accepts_any_safe_proposal():
    result = step(FakeOps(alarming=()), current=seed(None), rng=FixedDraw(0.99), recombinations=0)
    assert result.acceptance == 1.0 and result.accepted


def member(name: str, fitness: float) -> Member:
    return Member(id=name, instruction=name, harmless_reason="r", safe=True, score=score_of(fitness))


def test_best_ever_survives_a_rejected_or_worse_step():
    current, best = member("a", 1.0), member("best", 2.0)
    assert advance(current, best, member("b", 1.5), True, "fitness") == (member("b", 1.5), best)
    assert advance(current, best, member("c", 3.0), False, "fitness") == (current, member("c", 3.0))
    assert advance(current, None, None, False, "fitness") == (current, None)


def test_without_fitness_the_result_is_where_the_random_walk_ends():
    current, best = member("a", 1.0), member("best", 2.0)
    assert advance(current, best, member("b", 0.5), True, "random") == (member("b", 0.5), member("b", 0.5))
    result = step(FakeOps(), selection="random", rng=random.Random(3))
    assert result.accepted and result.acceptance == 1.0


def test_search_params_are_checked():
    with pytest.raises(ValidationError, match="unknown strategies"):
        SearchParams(strategies=["flattery"])
    with pytest.raises(ValidationError):
        SearchParams(strategy_choice="greedy")
    assert [s.name for s in SearchParams(strategies=["anger", "disgust"]).chosen_strategies()] == [
        "anger",
        "disgust",
    ]
