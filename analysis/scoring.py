"""Score the datasets a user names, as `safeset score` and `safeset report` do: resolve each name to a
TextSet (a stage of the run, or outside data), score it, and save its scorecard."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from analysis import scorecard
from analysis.scorecard import Embed, ScoreSettings
from analysis.textset import TextSet, from_run, from_source, is_stage_name
from pipeline.datasets import DATASETS
from pipeline.store import Store


@dataclass(frozen=True)
class SourceOptions:
    """How to read outside data and which field holds a run record's text."""

    text_field: str = "instruction"
    text_column: str | None = None
    category_column: str | None = None
    tactic_column: str | None = None
    split: str = "train"
    limit: int | None = None
    encoding: str = "utf-8"  # of a jsonl or csv file


def dataset_stages(store: Store, run_id: str) -> list[str]:
    """The dataset stages (core, edge, overrefusal_test, overrefusal_align) the run has records of."""
    produced = store.output_counts(run_id)
    return [name for name in DATASETS if produced.get(name)]


def load(name: str, store: Store | None, run_id: str | None, options: SourceOptions) -> TextSet:
    if is_stage_name(name):
        if store is None or run_id is None:
            raise ValueError(f"{name!r} names a stage, but there is no run to read it from")
        return from_run(store, run_id, name, options.text_field)
    return from_source(
        name,
        options.text_column,
        options.category_column,
        options.tactic_column,
        options.split,
        options.limit,
        options.encoding,
    )


def score_all(
    names: Sequence[str],
    store: Store | None,
    run_id: str | None,
    options: SourceOptions,
    settings: ScoreSettings,
    embed: Embed | None,
    save: bool = True,
) -> list[dict[str, Any]]:
    """A scorecard per name, in order; saved to the store unless `save` is off. Every dataset is checked
    before anything is scored or saved (outside data is read whole; a stage of the run must have texts,
    which are then streamed from the store as it is scored), so one that cannot be read stores nothing."""
    return score_sets([load(name, store, run_id, options) for name in names], store, settings, embed, save)


def score_sets(
    sets: Sequence[TextSet], store: Store | None, settings: ScoreSettings, embed: Embed | None, save: bool
) -> list[dict[str, Any]]:
    cards = [scorecard.score(data, settings, embed) for data in sets]
    if save and store is not None:
        store.save_scorecards(cards)
    return cards
