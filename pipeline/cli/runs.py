"""`safeset runs`: the runs in a database."""

from __future__ import annotations

import json

import click
from rich.table import Table

from pipeline.cli.common import console, db_option, user_errors
from pipeline.cli.group import main
from pipeline.store import Store


@main.command()
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@user_errors
def runs(db_path: str, as_json: bool) -> None:
    """List the runs in a database with their sessions and record counts.

    \b
    Example:
      safeset runs --db data/safeset.duckdb
    """
    store = Store.open(db_path, read_only=True)
    try:
        rows = store.runs()
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows, default=str))
        return
    table = Table("run", "name", "seed", "created", "sessions", "last session", "records", "config", box=None)
    for r in rows:
        table.add_row(
            r["run_id"],
            r["name"],
            str(r["seed"]),
            str(r["created_at"])[:19],
            str(r["sessions"]),
            str(r["status"]),
            str(r["records"]),
            str(r["config_path"] or ""),
        )
    console.print(table)
