"""The rows of a delivered dataset as one SQL query: typed columns, lineage and a train/test split.

A dataset's columns come from its row model in `pipeline.datasets` (so export and the stages that
validate rows cannot drift apart), extracted from the record's JSON by DuckDB, followed by the lineage
columns. The split is stratified by intended category and stable: within each category the rows are
ordered by the md5 of (run seed, id) and the first n * test_fraction (rounded half up) go to `test`,
so re-exporting the same records gives the same split, and a row keeps its split unless its
category's boundary moves.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass
from typing import Any

from pipeline.datasets import DATASETS
from pipeline.store import Store

LINEAGE = (
    "id", "run_id", "category", "tactic", "persona_id", "prompt_name", "prompt_version", "model", "seed",
)  # fmt: skip
SPLITS = ("train", "test")
ROWS_PER_SORT = 200_000  # rows the export orders by id at a time


class ExportError(Exception):
    """An export that cannot be made; the message says why and what to do."""


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


@dataclass(frozen=True)
class DatasetQuery:
    """A dataset's rows with their split: SQL and its parameters, and the ranges of ids the export
    sorts one at a time (`id_ranges`)."""

    sql: str
    params: list[Any]
    ranges: list[tuple[Any, Any]]


def _thresholds(store: Store, run_id: str, dataset: str, key: str, test_fraction: float) -> list[tuple]:
    """(stratum, largest test hash) per category with test rows, from two narrow aggregates: the rows
    per category, then the k smallest hashes of each (a heap of k per category, never a sort)."""
    where = "FROM records WHERE run_id = ? AND stage = ? GROUP BY 1"
    counts = store.con.execute(
        f"SELECT coalesce(category, ''), count(*) {where}", [run_id, dataset]
    ).fetchall()
    take = {stratum: math.floor(n * test_fraction + 0.5) for stratum, n in counts}
    most = max(take.values(), default=0)
    if not most:
        return []
    smallest = store.con.execute(
        f"SELECT coalesce(category, ''), min(md5_number(?::VARCHAR || id), ?) {where}",
        [key, most, run_id, dataset],
    ).fetchall()
    return [(stratum, hashes[take[stratum] - 1]) for stratum, hashes in smallest if take[stratum]]


def dataset_query(store: Store, run_id: str, dataset: str, test_fraction: float) -> DatasetQuery:
    """The dataset's rows, each with its split: a plain scan (no sort, no join). The export orders
    them by id, so identical runs export identical files whatever order their records were committed in."""
    model = DATASETS[dataset]
    key = f"{run_seed(store, run_id)}:"
    thresholds = _thresholds(store, run_id, dataset, key, test_fraction)
    split, params = "'train'", []
    if thresholds:
        cases = " ".join("WHEN ? THEN ?::UHUGEINT" for _ in thresholds)
        split = (
            f"CASE WHEN md5_number(?::VARCHAR || id) <= CASE coalesce(category, '') {cases} END "
            "THEN 'test' ELSE 'train' END"
        )
        params = [key, *(value for stratum, threshold in thresholds for value in (stratum, str(threshold)))]
    extracted = [_column(name, field.annotation) for name, field in model.model_fields.items()]
    lineage = [c for c in LINEAGE if c not in model.model_fields]
    sql = (
        f"SELECT {', '.join(extracted + lineage)}, {split} AS split "
        "FROM records WHERE run_id = ? AND stage = ?"
    )
    return DatasetQuery(sql, [*params, run_id, dataset], id_ranges(store, run_id, dataset))


def id_ranges(store: Store, run_id: str, dataset: str) -> list[tuple[Any, Any]]:
    """Ranges (after, upto] of the dataset's ids, in order, of about ROWS_PER_SORT rows (None: open), so
    the export sorts one range at a time and its memory stays flat however large the dataset."""
    where = "FROM records WHERE run_id = ? AND stage = ?"
    n = store.con.execute(f"SELECT count(*) {where}", [run_id, dataset]).fetchone()[0]
    pieces = math.ceil(n / ROWS_PER_SORT)
    if pieces <= 1:
        return [(None, None)]
    quantiles = [i / pieces for i in range(1, pieces)]
    cuts = store.con.execute(f"SELECT quantile_disc(id, ?) {where}", [quantiles, run_id, dataset]).fetchone()[
        0
    ]
    bounds = [None, *sorted(set(cuts)), None]
    return list(zip(bounds, bounds[1:], strict=False))


def datasets_in_run(store: Store, run_id: str) -> list[str]:
    """The delivered datasets that have rows in a run, in the order of `pipeline.datasets`."""
    counts = store.output_counts(run_id)
    return [name for name in DATASETS if counts.get(name)]


def run_seed(store: Store, run_id: str) -> int:
    return store.con.execute("SELECT seed FROM runs WHERE run_id = ?", [run_id]).fetchone()[0]


def check_rows(store: Store, run_id: str, dataset: str) -> None:
    """Raise if a record lacks a field its row model requires (a run written by an older safeset)."""
    model = DATASETS[dataset]
    for name, field in model.model_fields.items():
        if not field.is_required() or type(None) in typing.get_args(field.annotation):
            continue
        row = store.con.execute(
            f"SELECT id FROM records WHERE run_id = ? AND stage = ? "
            f"AND coalesce(json_type(json_extract(data, '$.{name}')), 'NULL') = 'NULL' LIMIT 1",
            [run_id, dataset],
        ).fetchone()
        if row:
            raise ExportError(
                f"record {row[0]} of dataset {dataset!r} has no {name!r}; it was written by a safeset whose "
                f"{model.__name__} differs from this one (see `safeset inspect {row[0]}`)"
            )
