"""The persona pool: all personas (from scenarios and their expansion), near-duplicates removed
(MinHash, then embedding cosine, as Persona Hub does), each kept persona paired with the intent
domains it will ask about. A barrier: dedup needs every persona."""

from __future__ import annotations

from collections import Counter

from pydantic import Field

from personas.sampling import pair_domains
from pipeline.records import Record
from pipeline.stage import Drop, Outcome, Stage, StageParams
from pipeline.stages.dedup import near_duplicates
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

    def process_all(self, items: list[Record]) -> dict[str, Outcome]:
        items = sorted(items, key=lambda r: (r.data["depth"], r.id))  # shallow personas win ties
        earlier = self.ctx.read_blocking(lambda store: store.records(self.ctx.run_id, self.name))
        reference = list(dict.fromkeys(r.data["persona"] for r in earlier))  # pooled in earlier sessions
        texts = [r.data["text"] for r in items]
        duplicates = near_duplicates(self.ctx, texts, self.params.jaccard, self.params.cosine, reference)
        outcomes: dict[str, Outcome] = {}
        kept = []
        for item, dup in zip(items, duplicates, strict=True):
            if dup is None:
                kept.append(item)
                continue
            of = "a persona pooled earlier" if dup.of < len(reference) else items[dup.of - len(reference)].id
            outcomes[item.id] = Drop(f"duplicate of persona {of} ({dup.method} {dup.score:.2f})")
        domains = sorted({r.category for r in [*items, *earlier]}, key=lambda code: int(code[1:]))
        per_persona = min(self.params.domains_per_persona, len(domains))
        used = Counter(r.category for r in earlier)
        pairs = pair_domains(
            [r.category for r in kept], domains, per_persona, self.ctx.seed_for("pairs"), used
        )
        for item, codes in zip(kept, pairs, strict=True):
            outcomes[item.id] = [self._pair(item, code) for code in codes]
        return outcomes

    def _pair(self, persona: Record, code: str) -> Record:
        category = hazard(code)
        data = {"persona": persona.data["text"], "category": code, "name": category.name,
                "description": category.description}  # fmt: skip
        return self.ctx.record(parents=(persona,), data=data, category=code)
