"""`safeset score`: lexical, semantic, intent and tactic coverage of datasets, side by side."""

from __future__ import annotations

import functools
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from pipeline.cli.common import console, db_option, fail, run_option, user_errors
from pipeline.cli.group import main

SCORE_MEMORY = "256MB"  # DuckDB's while score reads the store


def source_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """How datasets are read and scored: shared by `score` and `report`."""
    options = [
        click.option("--text-field", default="instruction", show_default=True,
                     help="Field of a run record's data that holds the text."),
        click.option("--text-column", help="Column of outside data holding the text (default: instruction, "
                     "prompt, text, question, ...)."),
        click.option("--category-column", help="Column with an S1-S14 (or other) category "
                     "(default: category)."),
        click.option("--tactic-column", help="Column with the jailbreak tactic (default: tactic)."),
        click.option("--split", default="train", show_default=True, help="Split of a saved or hub dataset."),
        click.option("--limit", type=click.IntRange(min=1), help="Read at most N rows of outside data."),
        click.option("--encoding", default="utf-8", show_default=True,
                     help="Encoding of a .jsonl/.csv file (e.g. latin-1); bytes that do not decode stop."),
        click.option("--tokens", type=click.Choice(["evorefuse", "words"]), default="evorefuse",
                     show_default=True, help="How texts become tokens for the lexical metrics: evorefuse = "
                     "EvoRefuse's convention, the lexical-diversity package's flemmatize (punctuation, "
                     "hyphens and apostrophes deleted, lower-cased, split on whitespace, words replaced "
                     "by their lemma); words = lower-case words, not lemmatised."),
        click.option("--msttr-window", type=click.IntRange(min=1), default=800, show_default=True,
                     help="MSTTR window in tokens."),
        click.option("--semantic-sample", type=click.IntRange(min=2), default=10_000, show_default=True,
                     help="Texts embedded for the semantic metrics (and the category classifier)."),
        click.option("--cluster-threshold", type=click.FloatRange(-1, 1), default=0.8, show_default=True,
                     help="Cosine at which two texts fall in one cluster."),
        click.option("--min-category-items", type=click.IntRange(min=1), default=10, show_default=True,
                     help="k in 'categories with at least k items'."),
        click.option("--classify", is_flag=True,
                     help="Assign categories with the embedding classifier even where labels exist."),
        click.option("--no-semantic", is_flag=True,
                     help="Skip embeddings (no semantic metrics, no classifier)."),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


def settings_and_options(kwargs: dict[str, Any]):
    """ScoreSettings and SourceOptions from the options above (removed from kwargs)."""
    from analysis.scorecard import ScoreSettings
    from analysis.scoring import SourceOptions

    options = SourceOptions(**{k: kwargs.pop(k) for k in list(SourceOptions.__dataclass_fields__)})
    settings = ScoreSettings(
        tokens=kwargs.pop("tokens"),
        msttr_window=kwargs.pop("msttr_window"),
        semantic_sample=kwargs.pop("semantic_sample"),
        cluster_threshold=kwargs.pop("cluster_threshold"),
        min_category_items=kwargs.pop("min_category_items"),
        categories="classifier" if kwargs.pop("classify") else "given",
        semantic=not kwargs.pop("no_semantic"),
    )
    return settings, options


def embedder(settings) -> Any:
    """The sentence embedder's encode function (None when semantic metrics are off)."""
    if not settings.semantic:
        return None
    from pipeline.embedder import Embedder

    return Embedder().encode


def data_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Unreadable data or a missing column: a message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pipeline.sources import SourceError

        try:
            return fn(*args, **kwargs)
        except (SourceError, ValueError) as exc:
            fail(str(exc))

    return wrapper


@main.command()
@click.argument("datasets", nargs=-1)
@db_option
@run_option
@click.option(
    "--compare",
    "compare",
    multiple=True,
    metavar="DATASET",
    help="Another dataset to score beside them (a stage, a file or a hub id); repeatable.",
)
@source_options
@click.option("--no-save", is_flag=True, help="Do not store the scorecards in the database.")
@click.option("--json", "as_json", is_flag=True, help="Print the full scorecards as JSON.")
@user_errors
@data_errors
def score(datasets: tuple[str, ...], db_path: str, run_id: str | None, compare: tuple[str, ...],
          no_save: bool, as_json: bool, **kwargs: Any) -> None:  # fmt: skip
    """Score datasets on lexical diversity, semantic diversity, intent and tactic coverage.

    A DATASET is a stage of a run in --db (core, edge, overrefusal_test, ...; default: every
    dataset stage of the run), or outside data: a .jsonl/.csv/.parquet file, a saved dataset folder
    or a hub id, with a text column and optional category and tactic columns. Scorecards are stored
    in --db, so `safeset report` can compare runs over time.

    Lexical metrics follow EvoRefuse's convention by default: tokens are lemmas as the
    lexical-diversity package's flemmatize makes them, MSTTR over windows of 800 tokens and MTLD
    over all texts as one stream (--tokens words for plain lower-case words).

    \b
    Examples:
      safeset score
      safeset score core edge --run core-3fa2
      safeset score core --compare wildjailbreak.jsonl --text-column adversarial
      safeset score my_prompts.csv --text-column prompt --category-column hazard --db scores.duckdb
    """
    from analysis.scoring import dataset_stages, load, score_sets
    from analysis.textset import is_stage_name
    from pipeline.datasets import DATASETS
    from pipeline.store import Store

    settings, options = settings_and_options(kwargs)
    names = [*datasets, *compare]
    needs_run = not datasets or any(is_stage_name(n) for n in names)
    # Outside data is read before the database is opened: a file that cannot be read writes nothing.
    outside = {n: load(n, None, None, options) for n in names if not is_stage_name(n)}
    store = None
    if not no_save:
        store = Store.open(db_path)
    elif needs_run:
        store = Store.open(db_path, read_only=True)
    spill = tempfile.TemporaryDirectory(prefix="safeset-score-")
    try:
        if store is not None:
            # A stage's texts are read in commit order: DuckDB sorts them in bounded memory, spilling.
            store.limit_export_memory(SCORE_MEMORY, Path(spill.name))
        run = store.resolve_run(run_id, with_records_in=tuple(DATASETS)) if needs_run else None
        if not datasets:
            names = [*dataset_stages(store, run), *compare]
            if len(names) == len(compare):
                fail(
                    f"run {run} has no dataset records yet (core, edge, overrefusal_*); name a stage or file"
                )
        sets = [outside.get(n) or load(n, store, run, options) for n in names]
        cards = score_sets(sets, store, settings, embedder(settings), save=not no_save)
    finally:
        if store is not None:
            store.close()
        spill.cleanup()
    if as_json:
        click.echo(json.dumps(cards, default=str))
        return
    print_cards(cards)


def print_cards(cards: list[dict[str, Any]]) -> None:
    from analysis import scorecard
    from analysis.scorecard import headline

    rows = [headline(card) for card in cards]
    table = Table("metric", *[_short(card["dataset"]) for card in cards], box=None)
    for metric in rows[0]:
        table.add_row(metric, *[_format(row[metric]) for row in rows])
    console.print(table)
    conventions = {scorecard.token_convention(card) for card in cards}
    console.print(f"lexical tokens: {'; '.join(sorted(conventions))}", highlight=False)
    for card in cards:
        notes = []
        if card["skipped"]:
            notes.append(f"{card['skipped']} rows without text skipped")
        # every other metric reads all the texts (streamed from the store, see analysis/lexical_stream.py)
        if card["semantic"] and card["semantic"]["n"] < card["n"]:
            notes.append(
                f"semantic metrics on a seeded sample of {card['semantic']['n']:,} of {card['n']:,} texts"
            )
        if card["n"] > card["settings"]["self_bleu_sample"]:
            notes.append(f"Self-BLEU on a seeded sample of {card['settings']['self_bleu_sample']:,} texts")
        if card["intent"]["source"] == "classifier":
            notes.append(f"categories from the embedding classifier on {card['semantic']['n']} texts")
        if notes:
            console.print(f"{_short(card['dataset'])}: {'; '.join(notes)}", highlight=False)


def _short(name: str) -> str:
    return name if len(name) <= 24 else "…" + name[-23:]


def _format(value: float | int | None) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.3f}"
