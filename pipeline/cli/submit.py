"""`safeset submit`: queue a run on the `safeset serve` that holds a database."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from pipeline.cli.common import console, db_option, fail, user_errors
from pipeline.cli.group import main


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@db_option
@click.option("--endpoint", metavar="URL", help="Point every LLM role at this OpenAI-compatible server.")
@click.option("--model", metavar="NAME", help="The model of every LLM role.")
@click.option("--max-items", type=click.IntRange(min=1), help="Start at most N root items.")
@click.option("--seed", type=click.IntRange(min=0, max=2**31 - 1), help="Override the config's seed.")
@click.option("--retry-failed", is_flag=True, help="Retry the items that failed in earlier sessions.")
@user_errors
def submit(config: str, db_path: str, endpoint: str | None, model: str | None, max_items: int | None,
           seed: int | None, retry_failed: bool) -> None:  # fmt: skip
    """Submit CONFIG to the server that holds --db (`safeset serve`), with the overrides of `safeset
    run`; the token comes from SAFESET_TOKEN. The server validates the config as `safeset run` does.

    \b
    Example:
      safeset submit configs/core.yaml --db data/safeset.duckdb --seed 7
    """
    from pipeline.config_yaml import ConfigFileError, read_config_text
    from pipeline.serve.client import served_by

    server = served_by(db_path)
    if server is None:
        fail(f"no `safeset serve` holds {db_path}; start one (safeset serve --db {shlex.quote(db_path)}) "
             f"or run the config here with `safeset run {shlex.quote(config)}`")  # fmt: skip
    try:
        text = read_config_text(Path(config))
    except ConfigFileError as exc:
        fail(f"{config}: {exc}")
    body = {"config": text, "endpoint": endpoint, "model": model, "max_items": max_items, "seed": seed,
            "retry_failed": retry_failed}  # fmt: skip
    document = server.json("POST", "/v1/runs", json=body)
    run_id, state = document["run"], document["queue"]["state"]
    verb = "queued" if document["queued"] else f"is {state} already"
    console.print(f"run [bold]{run_id}[/] {verb} at {server.url}", highlight=False)
    console.print(f"follow it: safeset status --db {shlex.quote(db_path)} --run {run_id}", highlight=False)
