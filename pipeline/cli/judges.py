"""`safeset judges`: how often each LLM judge a config uses agrees with human labels."""

from __future__ import annotations

import json
from dataclasses import asdict

import click
from rich.table import Table

from pipeline.cli.common import console, db_option, fail, setup_logging, user_errors
from pipeline.cli.group import main

COLUMNS = (
    "n",
    "failed",
    "agreement",
    "precision",
    "recall",
    "f1",
    "tp",
    "fp",
    "fn",
    "tn",
    "category_agreement",
)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@db_option
@click.option(
    "--requests",
    type=click.Path(dir_okay=False),
    help="Labelled requests: prompt, label (unsafe|safe), category (default: data/judges/requests.jsonl).",
)
@click.option(
    "--refusals",
    type=click.Path(dir_okay=False),
    help="Labelled responses: prompt, response, label (refusal|compliance) "
    "(default: data/judges/refusals.jsonl).",
)
@click.option(
    "--responses",
    type=click.Path(dir_okay=False),
    help="Labelled responses: prompt, response, label (harmful|harmless) "
    "(default: data/judges/responses.jsonl).",
)
@click.option("--json", "as_json", is_flag=True, help="Print every judge's result as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@user_errors
def judges(config: str, db_path: str, requests: str | None, refusals: str | None, responses: str | None,
           as_json: bool, verbose: bool) -> None:  # fmt: skip
    """Measure every LLM judge CONFIG uses against labelled files: the safety filter (and EvoRefuse's
    safety judge) on requests labelled safe or unsafe with an S1-S14 category, the core/edge response
    check and the Harm Score judge on responses labelled harmful or not, the refusal judge on
    responses labelled refusal or not. CONFIG is a run config or an eval config; the judges run as
    in it. Verdicts are cached and stored like any run's (the same command resumes); agreement,
    precision, recall, F1 and the confusion matrix go to the judge_results table, `safeset report`
    and the card of every export whose run used that judge model.

    \b
    Examples:
      safeset judges configs/quickstart.yaml
      safeset judges configs/eval_xstest.yaml --refusals my_labels.csv --json
    """
    setup_logging(verbose)
    from pipeline.cli.progress import RichProgress
    from pipeline.judges.run import LabelError, validate_judges
    from pipeline.runner import RunInterrupted

    files = {k: v for k, v in (("requests", requests), ("refusals", refusals), ("responses", responses)) if v}
    try:
        outcome = validate_judges(config, db_path, files, progress=RichProgress(console))  # type: ignore[arg-type]
    except LabelError as exc:
        fail(str(exc))
    except RunInterrupted:
        fail(f"interrupted; finished verdicts are kept. Resume with: safeset judges {config}", code=130)
    if as_json:
        click.echo(json.dumps([asdict(r) for r in outcome.results]))
        return
    table = Table("judge", "model", *COLUMNS, box=None, title=f"judges {outcome.summary.run_id}",
                  title_justify="left")  # fmt: skip
    for r in outcome.results:
        cells = [getattr(r, c) for c in COLUMNS]
        table.add_row(r.judge, r.model, *("-" if c is None else str(c) if isinstance(c, int) else f"{c:.3f}"
                                          for c in cells))  # fmt: skip
    console.print(table)
