"""What a stage can reach: its LLM roles, the embedder, seeds, the store (read-only), a record factory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from evaluators.refusal_base import RefusalClassifier, RefusalConfigBase
from pipeline.llm.client import LLMClient, LLMPool, first_attempt
from pipeline.llm.roles import EmbedderRole
from pipeline.llm.types import Result
from pipeline.records import Record, derive_seed
from pipeline.store import Store
from pipeline.store.thread import StoreThread

T = TypeVar("T")
_INHERITED = ("persona_id", "category", "tactic")


class RunContext:
    """Shared by every stage of one run."""

    def __init__(self, run_id: str, seed: int, pool: LLMPool, db: StoreThread, embedder: EmbedderRole):
        self.run_id = run_id
        self.seed = seed
        self.pool = pool
        self.db = db
        self.embedder_config = embedder
        self._embedder: Any = None

    def embedder(self) -> Any:
        """The run's sentence embedder (loaded on first use, shared by all stages)."""
        if self._embedder is None:
            from pipeline.embedder import Embedder

            self._embedder = Embedder(self.embedder_config)
        return self._embedder

    def for_stage(self, stage: str) -> StageContext:
        return StageContext(self, stage)


class StageContext:
    def __init__(self, run: RunContext, stage: str):
        self.run = run
        self.stage = stage

    @property
    def run_id(self) -> str:
        return self.run.run_id

    def llm(self, role: str) -> LLMClient:
        return self.run.pool.client(role, self.stage)

    def llms(self, role: str) -> list[LLMClient]:
        """Every model serving `role` (several targets are averaged by the stage that uses them)."""
        return self.run.pool.clients(role, self.stage)

    def embedder(self) -> Any:
        return self.run.embedder()

    @property
    def attempt(self) -> int:
        """The first LLM attempt of the item being processed: 0, or for a failed item retried with
        --retry-failed the attempts it already spent, so it gets new answers rather than its cached
        failed ones. The runner sets it in each item's own task, so concurrent items each read
        their own; the LLM client starts its schema retries there too."""
        return first_attempt()

    def refusal_classifier(self, config: RefusalConfigBase) -> RefusalClassifier:
        """The refusal classifier `config` names, given the judge or the embedder it needs."""
        judge = self.llm("judge") if "judge" in config.needs else None
        embedder = self.embedder() if "embedder" in config.needs else None
        return config.build(judge=judge, embedder=embedder)

    def seed_for(self, *parts: Any) -> int:
        """The seed for one piece of work, fixed by the run seed, this stage and `parts`."""
        return derive_seed(self.run.seed, self.stage, *parts)

    async def read(self, query: Callable[[Store], T]) -> T:
        """Run a read query on the store's thread (e.g. records of earlier runs for dedup)."""
        return await self.run.db.call(query)

    def read_blocking(self, query: Callable[[Store], T]) -> T:
        """`read` for a barrier's `process_all`, which runs on a worker thread."""
        return self.run.db.call_blocking(query)

    def record(
        self, parents: Sequence[Record], data: dict[str, Any], made_by: Result | None = None, **lineage: Any
    ) -> Record:
        """A record of this stage. persona, category and tactic are inherited from the first parent
        unless given; `made_by` (the LLM call that wrote it) fills in prompt, model, seed and cache key."""
        parent_ids = tuple(p.id for p in parents)
        if made_by is not None:
            lineage = {**made_by.lineage(), **lineage}
        if parents:
            for name in _INHERITED:
                lineage.setdefault(name, getattr(parents[0], name))
        return Record(
            id=Record.make_id(self.run_id, self.stage, parent_ids, data),
            run_id=self.run_id,
            stage=self.stage,
            data=data,
            parent_ids=parent_ids,
            **lineage,
        )
