"""Source stage: the seed instructions EvoRefuse evolves.

From one of:
- `core_run`: the `core` dataset of another run in the same database (EvoRefuse seeds from
  TRIDENT-core); each seed keeps its core record as parent, so lineage runs back to the persona;
- `file`: a user's jsonl, csv or parquet file, a saved dataset folder or a hub id, taking `column`
  (a text file is decoded strictly, as `encoding`: UTF-8 unless named);
- neither: the small shipped set of harmless instructions that sound alarming
  (data/evorefuse/seeds.jsonl).
Seeds are stripped, empty ones and exact repeats left out, and the first `limit` kept.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from pipeline.records import Record
from pipeline.resources import data_dir
from pipeline.sources import SourceError, check_encoding, column, read_rows
from pipeline.stage import Stage, StageInputError, StageParams
from pipeline.store import StoreError


class SeedsParams(StageParams):
    core_run: str | None = Field(default=None, description="a run id (or unique prefix) with a core dataset")
    file: str | None = Field(default=None, description="jsonl/csv/parquet file, saved dataset or hub id")
    column: str = "instruction"
    split: str = "train"
    encoding: str = Field(default="utf-8", description="of a jsonl or csv file (e.g. latin-1)")
    limit: int | None = Field(default=800, ge=1, description="seeds kept (published: 800)")

    @field_validator("file")
    @classmethod
    def _exists(cls, file: str | None) -> str | None:
        if file and Path(file).suffix and not Path(file).exists():
            raise ValueError(f"{file}: file not found")
        return file

    @field_validator("encoding")
    @classmethod
    def _known(cls, encoding: str) -> str:
        try:
            return check_encoding(encoding)
        except SourceError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _one_source(self) -> SeedsParams:
        if self.core_run and self.file:
            raise ValueError("give core_run or file, not both")
        return self


class OverrefusalSeedsStage(Stage):
    name = "overrefusal_seeds"
    description = "seed instructions for EvoRefuse: a core dataset, a user file, or the shipped set"
    Params = SeedsParams

    def plan(self) -> list[Record]:
        try:
            return self._seeds()
        except (SourceError, StoreError) as exc:
            raise StageInputError(self.name, str(exc)) from None

    def _seeds(self) -> list[Record]:
        p = self.params
        if p.core_run:
            parents = self._core_records(p.core_run)
            found = [(r.data.get("instruction", ""), r) for r in parents]
        else:
            source = p.file or str(data_dir() / "evorefuse" / "seeds.jsonl")
            rows = read_rows(source, split=p.split, encoding=p.encoding)
            found = [(value, None) for value in column(rows, p.column, source)]
        records, seen = [], set()
        for text, parent in found:
            instruction = str(text or "").strip()
            if not instruction or instruction in seen:
                continue
            seen.add(instruction)
            parents = (parent,) if parent is not None else ()
            records.append(self.ctx.record(parents=parents, data={"instruction": instruction}))
            if p.limit is not None and len(records) == p.limit:
                break
        if not records:
            raise SourceError("no seed instructions found (all empty?)")
        return records

    def _core_records(self, run: str) -> list[Record]:
        run_id = self.ctx.read_blocking(lambda store: store.resolve_run(run))
        records = self.ctx.read_blocking(lambda store: store.records(run_id, "core"))
        if not records:
            raise SourceError(f"run {run_id} has no core dataset; run a config with the core stage first")
        return records
