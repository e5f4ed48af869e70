"""EvoRefuse: evolve each seed into a harmless instruction that target models refuse.

The stage consumes its own output: an item is one seed's search state, and processing it runs one
iteration and emits the next state as a record. So every finished iteration is committed with its
progress marker, seeds evolve concurrently, and a killed run resumes at the first unfinished
iteration of each seed without repeating a finished one. A seed record starts a search: the seed is
judged and scored and becomes state 0; the final state (after `iterations`) has `final: true`.

Every instruction the search makes is stored as a record of the pseudo-stage `evolve_candidates`
(consumed by no stage) with its parents (the instruction it was mutated from, or the recombined
pair, back to the seed), strategy, iteration, verdict, harmless reason, fitness and both terms:
`safeset inspect CANDIDATE_ID` shows a candidate's lineage and the LLM call that wrote it.
"""

from __future__ import annotations

import functools
import random
from typing import Any

from pydantic import BaseModel, ConfigDict

from pipeline.context import StageContext
from pipeline.records import Record
from pipeline.stage import LLMParams, Outcome, Stage
from pipeline.stages.evolve_ops import LLMOperators, Scorer, ScoringParams
from pipeline.stages.evolve_search import Candidate, Member, SearchParams, Step, advance, iterate

CANDIDATES = "evolve_candidates"


class EvolveParams(LLMParams, SearchParams, ScoringParams):
    """temperature, top_p and max_tokens are the mutator's; the target's are target_*."""


class SearchState(BaseModel):
    """One seed's search after `iteration` iterations (the data of an `evolve` record)."""

    model_config = ConfigDict(extra="forbid")
    seed_id: str
    seed_instruction: str
    iteration: int
    final: bool
    current: Member  # x_t: what the next iteration mutates (the seed, even if judged unsafe)
    best: Member | None  # the best safe instruction ever seen
    strategy_cursor: int = 0
    strategy_stats: dict[str, tuple[int, int]] = {}  # strategy -> (tries, wins) in this search
    step: dict[str, Any] | None = None  # what the last iteration did


class EvolveStage(Stage):
    name = "evolve"
    description = "EvoRefuse search, one iteration per item"
    consumes = ("overrefusal_seeds", "evolve")
    roles = ("generator", "judge", "target")
    Params = EvolveParams

    def __init__(self, params: EvolveParams, ctx: StageContext):
        super().__init__(params, ctx)
        self.mutator = ctx.llm("generator")
        self.judge = ctx.llm("judge")
        self.scorer = Scorer(ctx.llms("target"), ctx.refusal_classifier(params.classifier), params)

    def _operators(self, seed_id: str, t: int) -> LLMOperators:
        seed_for = functools.partial(self.ctx.seed_for, seed_id, t)
        return LLMOperators(self.mutator, self.judge, self.scorer, self.params, seed_for)

    def skip(self, item: Record) -> bool:
        return item.stage == self.name and item.data["final"]  # the search of this seed has ended

    async def process(self, item: Record) -> Outcome:
        if item.stage != self.name:
            return await self._start(item)
        return await self._iterate(item, SearchState.model_validate(item.data))

    async def _start(self, seed: Record) -> Outcome:
        """State 0: the seed, judged (a judge failure fails the item) and, when safe, scored."""
        ops = self._operators(seed.id, 0)
        candidate = Candidate(seed.data["instruction"], "", "seed", (seed.id,), tag="seed")
        candidate.safe = await ops.judge(candidate.instruction, "", "seed")
        if candidate.safe:
            candidate.score = await ops.score(candidate.instruction, "seed")
        records, members = self._candidate_records([candidate], 0, seed.id, seed)
        member = members[candidate]
        state = SearchState(
            seed_id=seed.id,
            seed_instruction=candidate.instruction,
            iteration=0,
            final=False,
            current=member,
            best=member if member.safe else None,
        )
        return [*records, self.ctx.record(parents=(seed,), data=state.model_dump(mode="json"))]

    async def _iterate(self, item: Record, state: SearchState) -> Outcome:
        t = state.iteration
        rng = random.Random(self.ctx.seed_for(state.seed_id, t, "rng"))
        step = await iterate(
            self._operators(state.seed_id, t + 1),
            state.current,
            t,
            self.params,
            state.strategy_cursor,
            state.strategy_stats,
            rng,
        )
        records, members = self._candidate_records(step.candidates, t + 1, state.seed_id, item)
        proposal = members.get(step.proposal) if step.proposal is not None else None
        current, best = advance(state.current, state.best, proposal, step.accepted, self.params.selection)
        following = SearchState(
            seed_id=state.seed_id,
            seed_instruction=state.seed_instruction,
            iteration=t + 1,
            final=t + 1 >= self.params.iterations,
            current=current,
            best=best,
            strategy_cursor=step.cursor,
            strategy_stats=step.stats,
            step=_summary(step, proposal),
        )
        return [*records, self.ctx.record(parents=(item,), data=following.model_dump(mode="json"))]

    def _candidate_records(
        self, candidates: list[Candidate], iteration: int, seed_id: str, origin: Record
    ) -> tuple[list[Record], dict[Candidate, Member]]:
        """Records of `candidates` in order (parents before children) and the scored safe ones as
        members the state can hold."""
        ids: dict[Candidate, str] = {}
        records: list[Record] = []
        members: dict[Candidate, Member] = {}
        for c in candidates:
            parents = tuple(ids[p] if isinstance(p, Candidate) else p for p in c.parents)
            data = _candidate_data(c, iteration, seed_id)
            record = Record(
                id=Record.make_id(self.ctx.run_id, CANDIDATES, parents, data),
                run_id=self.ctx.run_id,
                stage=CANDIDATES,
                data=data,
                parent_ids=parents,
                persona_id=origin.persona_id,
                category=origin.category,
                **(c.made_by.lineage() if c.made_by is not None else {}),
            )
            ids[c] = record.id
            records.append(record)
            if c.error is None:
                members[c] = Member(
                    id=record.id,
                    instruction=c.instruction,
                    harmless_reason=c.harmless_reason,
                    safe=c.safe,
                    score=c.score,
                )
        return records, members


def _candidate_data(c: Candidate, iteration: int, seed_id: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "seed_id": seed_id,
        "iteration": iteration,
        "tag": c.tag,
        "operation": c.operation,
        "strategy": c.strategy.name if c.strategy else None,
        "group": c.strategy.group if c.strategy else None,
        "instruction": c.instruction,
        "harmless_reason": c.harmless_reason,
        "verdict": None if c.error else ("safe" if c.safe else "unsafe"),
        "error": c.error,
    }
    score = c.score.model_dump() if c.score else {}
    for key in (
        "fitness",
        "refusal_term",
        "confidence_term",
        "refusal_rate",
        "refusal_rates",
        "refusal_example",
    ):
        data[key] = score.get(key)
    return data


def _summary(step: Step, proposal: Member | None) -> dict[str, Any]:
    mutations = [c for c in step.candidates if c.operation == "mutation"]
    return {
        "proposal": proposal.id if proposal else None,
        "accepted": step.accepted,
        "tau": step.tau,
        "acceptance": step.acceptance,
        "mutations": len(mutations),
        "safe_mutations": sum(c.safe for c in mutations),
        "recombinations": len(step.candidates) - len(mutations),
        "failures": [c.error for c in step.candidates if c.error],
    }
