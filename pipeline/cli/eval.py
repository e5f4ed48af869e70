"""`safeset eval`: run target models over eval sets and compute refusal, over-refusal, compliance, Harm
Score and attack success rate per model, set, category and tactic."""

from __future__ import annotations

import json

import click
from rich.table import Table

from pipeline.cli.common import console, db_option, fail, setup_logging, user_errors
from pipeline.cli.group import main

COLUMNS = ("n", "failed", "refusal_prefix", "refusal_judge", "over_refusal", "compliance", "harm_score",
           "harm_5", "asr")  # fmt: skip


@main.command(name="eval")
@click.argument("config", type=click.Path(dir_okay=False))
@db_option
@click.option(
    "--endpoint", metavar="URL", help="Evaluate a model on this OpenAI-compatible server (with --model)."
)
@click.option(
    "--model", metavar="NAME", help="The target model (with --endpoint: the name to ask the server for)."
)
@click.option("--json", "as_json", is_flag=True, help="Print every metric row as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@user_errors
def eval_(
    config: str, db_path: str, endpoint: str | None, model: str | None, as_json: bool, verbose: bool
) -> None:
    """Evaluate the target models of CONFIG on its eval sets (benchmarks such as XSTest, HarmBench and
    OR-Bench, test splits of generated datasets, files of your own). Answers and verdicts are cached
    and stored like any run's records (the same command resumes); the metrics go to the eval_results
    table, where models and runs compare side by side.

    \b
    Examples:
      safeset eval configs/eval_xstest.yaml
      safeset eval configs/eval_xstest.yaml --db data/evals.duckdb --json
      safeset eval configs/eval_xstest.yaml --endpoint http://localhost:8000/v1 --model my-sft-model
    """
    setup_logging(verbose)
    from pipeline.cli.progress import RichProgress
    from pipeline.eval.run import run_eval
    from pipeline.runner import RunInterrupted
    from pipeline.sources import SourceError
    from pipeline.store import Store

    try:
        outcome = run_eval(config, db_path, RichProgress(console), endpoint=endpoint, model=model)
    except RunInterrupted:
        fail(f"interrupted; finished answers are kept. Resume with: safeset eval {config}", code=130)
    except SourceError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps([vars(row) for row in outcome.rows]))
        return
    store = Store.open(db_path, read_only=True)
    try:
        rows = store.eval_results(outcome.summary.run_id)
    finally:
        store.close()
    table = Table(
        "target", "set", *COLUMNS, box=None, title=f"eval {outcome.summary.run_id}", title_justify="left"
    )
    for row in rows:
        cells = [row.get(c) for c in COLUMNS]
        table.add_row(row["target"], row["eval_set"], *("-" if c is None else f"{c:.3g}" for c in cells))
    console.print(table)
    console.print(
        f"per category and tactic: safeset eval {config} --json, or eval_results in {db_path}",
        highlight=False,
    )
