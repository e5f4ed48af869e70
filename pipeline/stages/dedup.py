"""TRIDENT step 7b: near-duplicate instructions removed within the run and against earlier runs
(and optional reference datasets), then the core quota: at most `per_category` instructions per
domain, spread evenly over personas. A barrier: it needs every instruction at once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from pydantic import Field, field_validator

from evaluators.dedup import Duplicate, find_duplicates
from pipeline.context import StageContext
from pipeline.coverage import spread
from pipeline.records import Record
from pipeline.sources import column, read_rows
from pipeline.stage import Drop, Outcome, Stage, StageParams
from pipeline.store import Store


class DedupParams(StageParams):
    jaccard: float = Field(
        default=0.7, gt=0, le=1, description="MinHash Jaccard at which texts are duplicates"
    )
    cosine: float | None = Field(
        default=0.9, ge=-1, le=1, description="embedding cosine at which texts are duplicates (null: off)"
    )
    across_runs: bool = Field(
        default=True, description="also drop duplicates of earlier runs in this database"
    )
    reference: list[str] = Field(
        default_factory=list,
        description="datasets (jsonl/csv/parquet/saved/hub id) whose texts count as earlier",
    )
    reference_column: str = "instruction"
    per_category: int | None = Field(
        default=None, ge=1, description="core target: instructions kept per intent domain (null: all)"
    )

    @field_validator("reference")
    @classmethod
    def _files_exist(cls, sources: list[str]) -> list[str]:
        for source in sources:
            path = Path(source)
            if path.suffix in (".jsonl", ".json", ".csv", ".parquet") and not path.is_file():
                raise ValueError(f"reference file {source} does not exist")
        return sources


def near_duplicates(
    ctx: StageContext,
    texts: Sequence[str],
    jaccard: float,
    cosine: float | None,
    reference: Sequence[str] = (),
) -> list[Duplicate | None]:
    """evaluators.dedup.find_duplicates with the run's embedder (MinHash only when cosine is None)."""
    if cosine is None:
        return find_duplicates(texts, reference=reference, jaccard=jaccard)
    return find_duplicates(
        texts, embed=ctx.embedder().encode, reference=reference, jaccard=jaccard, cosine=cosine
    )


class DedupStage(Stage):
    name = "dedup"
    description = (
        "drop near-duplicate instructions (this run, earlier runs, references); fill the per-domain quota"
    )
    consumes = ("safety_filter",)
    barrier = True
    Params = DedupParams

    def process_all(self, items: list[Record]) -> dict[str, Outcome]:
        items = sorted(items, key=lambda r: r.id)  # commit order varies between runs; ids do not
        labels, texts, kept_before = self._reference()
        found = near_duplicates(
            self.ctx, [r.data["instruction"] for r in items], self.params.jaccard, self.params.cosine, texts
        )
        outcomes: dict[str, Outcome] = {}
        kept: list[Record] = []
        for item, dup in zip(items, found, strict=True):
            if dup is None:
                kept.append(item)
                continue
            source = (
                labels[dup.of] if dup.of < len(labels) else f"instruction {items[dup.of - len(labels)].id}"
            )
            outcomes[item.id] = Drop(f"near-duplicate of {source} ({dup.method} {dup.score:.2f})")
        for code in dict.fromkeys(r.category for r in kept):
            in_domain = [r for r in kept if r.category == code]
            target = self.params.per_category
            quota = len(in_domain) if target is None else max(0, target - kept_before[code])
            chosen = {r.id for r in spread(in_domain, quota, lambda r: r.persona_id, self.ctx.seed_for(code))}
            for item in in_domain:
                if item.id in chosen:
                    outcomes[item.id] = [self.ctx.record(parents=(item,), data=dict(item.data))]
                else:
                    outcomes[item.id] = Drop(f"over the {code} target of {target}")
        return outcomes

    def _reference(self) -> tuple[list[str], list[str], Counter]:
        """What counts as earlier than these items, as (labels, texts), and how many instructions per
        domain this run kept in earlier sessions (a resumed run continues; it does not start over)."""
        labels: list[str] = []
        texts: list[str] = []
        kept_before: Counter = Counter()
        for run_id, category, text in self.ctx.read_blocking(self._kept):
            if run_id == self.ctx.run_id:
                kept_before[category] += 1
                labels.append("an instruction kept earlier in this run")
            else:
                labels.append(f"an instruction of run {run_id}")
            texts.append(text)
        for source in self.params.reference:
            values = [str(v) for v in column(read_rows(source), self.params.reference_column, source) if v]
            texts.extend(values)
            labels.extend(f"a row of {source}" for _ in values)
        return labels, texts, kept_before

    def _kept(self, store: Store) -> list[tuple[str, str, str]]:
        """(run, category, instruction) kept by this stage so far: in this run, and in others when
        `across_runs`."""
        return store.kept_texts(self.name, "instruction", self.ctx.run_id, self.params.across_runs)
