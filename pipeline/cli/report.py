"""`safeset report`: one self-contained HTML file with a run's scorecards, plots and failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pipeline.cli.common import console, db_option, fail, run_option, user_errors
from pipeline.cli.group import main
from pipeline.cli.score import data_errors, embedder, settings_and_options, source_options


@main.command()
@db_option
@run_option
@click.option("--compare", "compare", multiple=True, metavar="DATASET",
              help="Outside data to show beside the run (a file or hub id); repeatable. Scored once, "
              "then read from the database.")  # fmt: skip
@click.option(
    "-o", "--out", "output", type=click.Path(dir_okay=False), help="HTML file (default: reports/RUN.html)."
)
@click.option("--output", "old_output", type=click.Path(dir_okay=False), hidden=True)  # the old name of --out
@click.option("--rescore", is_flag=True, help="Score again even where the database has a scorecard.")
@source_options
@user_errors
@data_errors
def report(db_path: str, run_id: str | None, compare: tuple[str, ...], output: str | None,
           old_output: str | None, rescore: bool, **kwargs: Any) -> None:  # fmt: skip
    """Write an HTML report of a run: scorecard table, intent category bars, tactic x category
    heatmap, diversity versus compared datasets, over-refusal search curves, the same datasets in
    earlier runs, and failures by stage and reason.

    The run's datasets are scored first where the database has no scorecard of them yet (see
    `safeset score`). The file needs nothing else to be viewed: plots are inline SVG.

    \b
    Examples:
      safeset report
      safeset report --run core-3fa2 --compare wildjailbreak.jsonl --text-column adversarial --out core.html
    """
    from analysis.report import render
    from analysis.report_data import collect
    from analysis.scoring import dataset_stages, score_all
    from pipeline.datasets import DATASETS
    from pipeline.serve.client import served_by
    from pipeline.store import Store

    settings, options = settings_and_options(kwargs)
    server = served_by(db_path)
    if server is not None:  # `safeset serve` holds the database: it renders the report
        if compare or rescore:
            fail("--compare and --rescore are not available while `safeset serve` holds the database")
        run = server.run_id(run_id)
        html = server.request("GET", f"/v1/runs/{run}/report", params={"semantic": settings.semantic}).text
        _write(Path(output or old_output or f"reports/{run}.html"), html)
        return
    embed = embedder(settings)
    store = Store.open(db_path)
    try:
        run = store.resolve_run(run_id, with_records_in=tuple(DATASETS))

        def cards_of(names: list[str], run_of: str | None) -> list[dict[str, Any]]:
            found = []
            for name in names:
                stored = [] if rescore else store.latest_scorecards(run_id=run_of, dataset=name)
                stored = [c for c in stored if c["run_id"] == run_of]
                found += stored or score_all([name], store, run_of, options, settings, embed)
            return found

        cards = cards_of(dataset_stages(store, run), run)
        compared = cards_of(list(compare), None)
        html = render(collect(store, run, cards, compared))
    finally:
        store.close()
    _write(Path(output or old_output or f"reports/{run}.html"), html)


def _write(path: Path, html: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    console.print(f"wrote {path} ({len(html) // 1024} KiB)", highlight=False)
