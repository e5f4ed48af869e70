"""A dataset to score: its texts, with an optional category and tactic per text.

It comes from a stage of a safeset run (`core`, `edge`, `overrefusal_test`, ...; the text is a
field of the record's data, the category the judge's verdict or else the intended one, the tactic
the record's) or from any jsonl/csv/parquet file, saved dataset or hub dataset with a text column.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from pipeline.sources import SourceError, column, read_rows
from pipeline.store import Store

TEXT_COLUMNS = ("instruction", "prompt", "text", "question", "query", "adversarial", "vanilla")
BATCH = 10_000
# A batch of texts with their categories and tactics, all three the same length.
Batch = tuple[list[str], list[str | None], list[str | None]]


@dataclass
class TextSet:
    """Texts held in memory (outside data, read whole by its reader)."""

    name: str
    texts: list[str]
    categories: list[str | None]
    tactics: list[str | None]
    run_id: str | None = None  # set when the texts are a stage of a safeset run
    skipped: int = 0  # rows without a text
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.texts)

    def batches(self) -> Iterator[Batch]:
        for start in range(0, len(self.texts), BATCH):
            end = start + BATCH
            yield self.texts[start:end], self.categories[start:end], self.tactics[start:end]


@dataclass
class StageTexts:
    """The texts of a stage of a run, read from the store batch by batch each time `batches` is
    called, so that scoring holds one batch at a time whatever the stage's size."""

    name: str
    store: Store
    run_id: str
    text_field: str
    n: int  # records with a text
    skipped: int  # records without one
    notes: list[str] = field(default_factory=list)

    def batches(self) -> Iterator[Batch]:
        for batch in self.store.text_batches(self.run_id, self.name, self.text_field):
            columns = batch.to_pydict()
            rows = [
                row
                for row in zip(columns["text"], columns["category"], columns["tactic"], strict=True)
                if row[0]
            ]
            if rows:
                texts, categories, tactics = (list(column) for column in zip(*rows, strict=True))
                yield texts, categories, tactics


def is_stage_name(source: str) -> bool:
    """A bare word (`core`) names a stage of a run; anything with a dot or slash is data."""
    return source.isidentifier()


def from_run(store: Store, run_id: str, stage: str, text_field: str = "instruction") -> StageTexts:
    """The records of `stage` in the run, in commit order, to be streamed from the store."""
    with_text, without = store.text_counts(run_id, stage, text_field)
    if not with_text:
        stages = sorted(store.output_counts(run_id))
        if stage not in stages:
            raise SourceError(f"run {run_id} has no records of stage {stage!r}; stages: {', '.join(stages)}")
        raise SourceError(f"stage {stage!r} of run {run_id} has no {text_field!r} field; pass --text-field")
    return StageTexts(stage, store, run_id, text_field, with_text, without)


def from_source(
    source: str,
    text_column: str | None = None,
    category_column: str | None = None,
    tactic_column: str | None = None,
    split: str = "train",
    limit: int | None = None,
    encoding: str = "utf-8",
) -> TextSet:
    """A user's dataset. The text column defaults to the first of TEXT_COLUMNS it has; category and
    tactic columns default to `category` and `tactic` when present. A dataset without a single text
    is an error, not a scorecard of nothing."""
    rows = read_rows(source, split=split, limit=limit, encoding=encoding)
    if not rows:
        raise SourceError(f"{source}: no rows")
    names = set(rows[0])
    if text_column is None:
        text_column = next((c for c in TEXT_COLUMNS if c in names), None)
        if text_column is None:
            raise SourceError(
                f"{source}: which column holds the text? pass --text-column; columns: {', '.join(rows[0])}"
            )
    texts_raw = column(rows, text_column, source)
    categories = _optional(rows, category_column, "category", source)
    tactics = _optional(rows, tactic_column, "tactic", source)
    kept = [i for i, text in enumerate(texts_raw) if isinstance(text, str) and text.strip()]
    if not kept:
        raise SourceError(f"{source}: none of its {len(rows)} rows has a text in column {text_column!r}")
    return TextSet(
        name=source,
        texts=[texts_raw[i] for i in kept],
        categories=[categories[i] for i in kept],
        tactics=[tactics[i] for i in kept],
        skipped=len(rows) - len(kept),
    )


def _optional(rows: list[dict], name: str | None, default: str, source: str) -> list[str | None]:
    if name is None:
        if default not in rows[0]:
            return [None] * len(rows)
        name = default
    return [str(v) if v not in (None, "") else None for v in column(rows, name, source)]
