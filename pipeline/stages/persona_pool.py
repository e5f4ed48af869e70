"""The persona pool (personas.pool): all personas (from scenarios and their expansion), near-duplicates
removed (MinHash, then embedding cosine, as Persona Hub does), each kept persona paired with the
intent domains it will ask about. A barrier: dedup needs every persona. But the scenarios' personas
(depth 0) sort before every expansion and are compared only with each other, so they are decided as
soon as the `personas` stage has finished, and instructions start on them while the expansion still
runs; the expansions are then decided against them as a resumed run would be. Only with one domain
per persona: pairing more counts the own domain of every kept persona, so that pool waits for all."""

from __future__ import annotations

from pydantic import Field

from evaluators import minhash
from evaluators.dedup import Memo, find_duplicates
from personas.pool import pool_personas
from pipeline.context import StageContext
from pipeline.records import Record
from pipeline.stage import Drop, Outcome, Stage, StageParams
from pipeline.taxonomy import hazard


class PersonaPoolParams(StageParams):
    jaccard: float = Field(
        default=0.7, gt=0, le=1, description="MinHash Jaccard at which personas are duplicates"
    )
    cosine: float | None = Field(
        default=0.9, ge=-1, le=1, description="embedding cosine at which personas are duplicates (null: off)"
    )
    domains_per_persona: int = Field(
        default=1, ge=1, le=14, description="domains each persona asks about: its own, then the least used"
    )


class PersonaPoolStage(Stage):
    name = "persona_pool"
    description = "dedup personas (MinHash, embeddings) and pair each with the domains it asks about"
    consumes = ("personas", "related_personas")
    barrier = True
    Params = PersonaPoolParams

    def __init__(self, params: PersonaPoolParams, ctx: StageContext):
        super().__init__(params, ctx)
        # The personas decided early are the later decision's reference: their signatures and
        # embeddings are computed once.
        self._signatures = Memo(minhash.signatures)
        self._embeddings = Memo(lambda texts: ctx.embedder().encode(texts))

    def early_inputs(self) -> tuple[str, ...]:
        return ("personas",) if self.params.domains_per_persona == 1 else ()

    def process_all(self, items: list[Record]) -> dict[str, Outcome]:
        earlier = self.ctx.read_blocking(lambda store: store.records(self.ctx.run_id, self.name))
        p = self.params
        embedding = {} if p.cosine is None else {"embed": self._embeddings, "cosine": p.cosine}
        pool = pool_personas(
            items,
            earlier,
            lambda texts, reference: find_duplicates(
                texts, reference=reference, jaccard=p.jaccard, signatures=self._signatures, **embedding
            ),
            p.domains_per_persona,
            self.ctx.seed_for("pairs"),
        )
        outcomes: dict[str, Outcome] = {id_: Drop(reason) for id_, reason in pool.dropped.items()}
        for persona, codes in pool.kept:
            outcomes[persona.id] = [self._pair(persona, code) for code in codes]
        return outcomes

    def _pair(self, persona: Record, code: str) -> Record:
        category = hazard(code)
        data = {"persona": persona.data["text"], "category": code, "name": category.name,
                "description": category.description}  # fmt: skip
        return self.ctx.record(parents=(persona,), data=data, category=code)
