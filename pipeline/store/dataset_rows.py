"""Named queries on a run's delivered datasets (core, edge, overrefusal_test, overrefusal_align): their
rows as one SQL query with typed columns, lineage and a train/test split, for export, the dataset card
and the eval sets made from them.

A dataset's columns come from its row model in `pipeline.datasets` (so export and the stages that
validate rows cannot drift apart), extracted from the record's JSON by DuckDB, followed by the lineage
columns. The split is stratified by intended category and stable: within each category the rows are
ordered by the md5 of (run seed, id) and the first n * test_fraction (rounded half up) go to `test`,
so re-exporting the same records gives the same split, and a row keeps its split unless its
category's boundary moves.

    query = store.dataset_query(run_id, "core", test_fraction=0.1)
    for after, upto in query.ranges:
        batches = store.dataset_batches(query, {"id": "id", "messages": (Message(...), ...)}, after, upto)
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipeline.datasets import DATASETS
from pipeline.store.reviews import reviewed_source

LINEAGE = (
    "id", "run_id", "category", "tactic", "persona_id", "prompt_name", "prompt_version", "model", "seed",
)  # fmt: skip
ROWS_PER_SORT = 200_000  # rows an export orders by id at a time


@dataclass(frozen=True)
class DatasetQuery:
    """A dataset's rows with their split: SQL and its parameters, and the ranges of ids the export
    sorts one at a time (`ranges`). Made by `Store.dataset_query`, read back by the store only."""

    sql: str
    params: list[Any]
    ranges: list[tuple[Any, Any]]


@dataclass(frozen=True)
class Message:
    """One chat message built from a row: {role_key: role, content_key: the row's `column`}."""

    role_key: str
    role: str
    content_key: str
    column: str


# An output column: a column of the dataset's rows, one message, or a chat (a list of messages).
Column = str | Message | tuple[Message, ...]


def _column(name: str, annotation: Any) -> str:
    """DuckDB expression extracting field `name` of the row model from the record's JSON `data`."""
    path = f"'$.{name}'"
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = args[0]  # `X | None`: extraction yields NULL for a missing or null value
    if annotation is str:
        return f"json_extract_string(data, {path}) AS {name}"
    scalar = {float: "DOUBLE", int: "BIGINT", bool: "BOOLEAN"}.get(annotation)
    if scalar:
        return f"CAST(json_extract(data, {path}) AS {scalar}) AS {name}"
    if typing.get_origin(annotation) is dict and typing.get_args(annotation) == (str, float):
        # Hugging Face datasets has no map type: a mapping becomes a list of {key, value}.
        return f"map_entries(CAST(json_extract(data, {path}) AS MAP(VARCHAR, DOUBLE))) AS {name}"
    raise TypeError(f"no export rule for field {name}: {annotation}")


def _message(m: Message) -> str:
    return f'struct_pack("{m.role_key}" := \'{m.role}\', "{m.content_key}" := {m.column})'


def _expression(column: Column) -> str:
    if isinstance(column, Message):
        return _message(column)
    if isinstance(column, tuple):
        return f"list_value({', '.join(_message(m) for m in column)})"
    return column


def _projection(columns: dict[str, Column] | None) -> str:
    """The SELECT list of an output over a dataset's rows, with the split (None: every column)."""
    if columns is None:
        return "*"
    return ", ".join([*(f"{_expression(c)} AS {name}" for name, c in columns.items()), "split"])


class DatasetQueries:
    """Part of Store (see store.py)."""

    con: duckdb.DuckDBPyConnection
    path: Path
    _arrow_batches: Callable[[str, list, int], Iterator[pa.RecordBatch]]

    def run_seed(self, run_id: str) -> int:
        return self.con.execute("SELECT seed FROM runs WHERE run_id = ?", [run_id]).fetchone()[0]

    def dataset_query(
        self, run_id: str, dataset: str, test_fraction: float, reviewed_only: bool = False
    ) -> DatasetQuery:
        """The dataset's rows as reviewed (rejected ones left out, edits applied; with `reviewed_only`
        unreviewed ones left out too), each with its split: a scan joined to the latest reviews, no
        sort. The export orders them by id, so identical runs export identical files whatever order
        their records were committed in."""
        model = DATASETS[dataset]
        key = f"{self.run_seed(run_id)}:"
        source = reviewed_source(reviewed_only)
        thresholds = self._thresholds(source, run_id, dataset, key, test_fraction)
        split, params = "'train'", []
        if thresholds:
            cases = " ".join("WHEN ? THEN ?::UHUGEINT" for _ in thresholds)
            split = (
                f"CASE WHEN md5_number(?::VARCHAR || id) <= CASE coalesce(category, '') {cases} END "
                "THEN 'test' ELSE 'train' END"
            )
            params = [
                key,
                *(value for stratum, threshold in thresholds for value in (stratum, str(threshold))),
            ]
        extracted = [_column(name, field.annotation) for name, field in model.model_fields.items()]
        lineage = [c for c in LINEAGE if c not in model.model_fields]
        sql = f"SELECT {', '.join(extracted + lineage)}, {split} AS split FROM {source}"
        return DatasetQuery(sql, [*params, run_id, dataset], self._id_ranges(source, run_id, dataset))

    def _thresholds(
        self, source: str, run_id: str, dataset: str, key: str, test_fraction: float
    ) -> list[tuple]:
        """(stratum, largest test hash) per category with test rows, from two narrow aggregates: the
        rows per category, then the k smallest hashes of each (a heap of k per category, never a sort)."""
        where = f"FROM {source} GROUP BY 1"
        counts = self.con.execute(
            f"SELECT coalesce(category, ''), count(*) {where}", [run_id, dataset]
        ).fetchall()
        take = {stratum: math.floor(n * test_fraction + 0.5) for stratum, n in counts}
        most = max(take.values(), default=0)
        if not most:
            return []
        smallest = self.con.execute(
            f"SELECT coalesce(category, ''), min(md5_number(?::VARCHAR || id), ?) {where}",
            [key, most, run_id, dataset],
        ).fetchall()
        return [(stratum, hashes[take[stratum] - 1]) for stratum, hashes in smallest if take[stratum]]

    def _id_ranges(self, source: str, run_id: str, dataset: str) -> list[tuple[Any, Any]]:
        """Ranges (after, upto] of the dataset's ids, in order, of about ROWS_PER_SORT rows (None: open),
        so the export sorts one range at a time and its memory stays flat however large the dataset."""
        where = f"FROM {source}"
        n = self.con.execute(f"SELECT count(*) {where}", [run_id, dataset]).fetchone()[0]
        pieces = math.ceil(n / ROWS_PER_SORT)
        if pieces <= 1:
            return [(None, None)]
        quantiles = [i / pieces for i in range(1, pieces)]
        cuts = self.con.execute(
            f"SELECT quantile_disc(id, ?) {where}", [quantiles, run_id, dataset]
        ).fetchone()[0]
        bounds = [None, *sorted(set(cuts)), None]
        return list(zip(bounds, bounds[1:], strict=False))

    def record_without(self, run_id: str, stage: str, field: str) -> str | None:
        """The id of a record of `stage` whose data lacks `field` (or holds null), if any."""
        row = self.con.execute(
            "SELECT id FROM records WHERE run_id = ? AND stage = ? "
            "AND coalesce(json_type(json_extract(data, ?)), 'NULL') = 'NULL' LIMIT 1",
            [run_id, stage, f"$.{field}"],
        ).fetchone()
        return row[0] if row else None

    def limit_export_memory(self, memory: str, spill: Path) -> None:
        """Sort in bounded memory from here on: one thread, a capped cache, and a sort that spills to
        `spill`."""
        self.con.execute(f"SET threads = 1; SET memory_limit = '{memory}'; SET temp_directory = '{spill}'")

    def dataset_batches(
        self,
        query: DatasetQuery,
        columns: dict[str, Column] | None,
        after: Any,
        upto: Any,
        batch_size: int = 10_000,
    ) -> Iterator[pa.RecordBatch]:
        """The rows with ids in (after, upto] (None: open), ordered by id, as `columns` (None: all) and
        their split, in Arrow batches."""
        sql = (
            f"SELECT {_projection(columns)} FROM ({query.sql}) "
            "WHERE (?::VARCHAR IS NULL OR id > ?) AND (?::VARCHAR IS NULL OR id <= ?) ORDER BY id"
        )
        return self._arrow_batches(sql, [*query.params, after, after, upto, upto], batch_size)

    def dataset_counts(self, query: DatasetQuery) -> list[tuple[str, str, str, int]]:
        """(split, category or '-', tactic or '-', rows) of a dataset."""
        return self.con.execute(
            f"SELECT split, coalesce(category, '-'), coalesce(tactic, '-'), count(*) "
            f"FROM ({query.sql}) GROUP BY ALL",
            query.params,
        ).fetchall()

    def dataset_prompts(self, query: DatasetQuery, split: str) -> list[tuple[str, str, str, str]]:
        """(id, instruction, category, tactic) of the dataset's rows in `split`, by id."""
        return self.con.execute(
            f"SELECT id, instruction, category, tactic FROM ({query.sql}) WHERE split = ? ORDER BY id",
            [*query.params, split],
        ).fetchall()

    def last_run_with(self, stage: str) -> str | None:
        """The run that most recently committed records of `stage`."""
        row = self.con.execute(
            "SELECT run_id FROM records WHERE stage = ? GROUP BY run_id ORDER BY max(seq) DESC LIMIT 1",
            [stage],
        ).fetchone()
        return row[0] if row else None
