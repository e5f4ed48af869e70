"""Checks on a run's delivered datasets before they are exported. Their rows, typed columns, lineage
and stable train/test split are one store query (`store.dataset_query`, pipeline/store/dataset_rows.py).
"""

from __future__ import annotations

import typing

from pipeline.datasets import DATASETS
from pipeline.store import Store

SPLITS = ("train", "test")


class ExportError(Exception):
    """An export that cannot be made; the message says why and what to do."""


def datasets_in_run(store: Store, run_id: str) -> list[str]:
    """The delivered datasets that have rows in a run, in the order of `pipeline.datasets`."""
    counts = store.output_counts(run_id)
    return [name for name in DATASETS if counts.get(name)]


def check_rows(store: Store, run_id: str, dataset: str) -> None:
    """Raise if a record lacks a field its row model requires (a run written by an older safeset)."""
    model = DATASETS[dataset]
    for name, field in model.model_fields.items():
        if not field.is_required() or type(None) in typing.get_args(field.annotation):
            continue
        record_id = store.record_without(run_id, dataset, name)
        if record_id:
            raise ExportError(
                f"record {record_id} of dataset {dataset!r} has no {name!r}; it was written by a safeset "
                f"whose {model.__name__} differs from this one (see `safeset inspect {record_id}`)"
            )
