"""`safeset status`: what a run has done, what is pending, what failed and why, and what it cost."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from pipeline.cli.common import console, db_option, err_console, fail, run_option, user_errors
from pipeline.cli.group import main
from pipeline.status import read_live_status, run_status
from pipeline.store import DatabaseInUse, Store


@main.command()
@db_option
@run_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@user_errors
def status(db_path: str, run_id: str | None, as_json: bool) -> None:
    """Show per-stage progress, LLM usage and cost, and failures of a run.

    \b
    Examples:
      safeset status
      safeset status --db data/core.duckdb --run core-3fa2 --json
    """
    from pipeline.serve.client import served_by

    server = served_by(db_path)
    if server is not None:  # `safeset serve` holds the database: ask it
        report = server.status(run_id)
        click.echo(json.dumps(report, default=str)) if as_json else _print_report(report)
        return
    try:
        store = Store.open(db_path, read_only=True)
    except DatabaseInUse as busy:
        report = read_live_status(db_path, busy.pid)
        if report is None:
            raise
        _check_live_run(report, run_id, db_path, busy.pid)
        err_console.print(
            f"(a run is in progress in pid {busy.pid}: live status from {report['updated_at']})",
            highlight=False,
        )
    else:
        try:
            from pipeline.kinds import stages_of  # loads every stage: only when a run is read

            resolved = store.resolve_run(run_id)
            report = run_status(store, resolved, stages_of(store.run_config(resolved) or {}))
        finally:
            store.close()
    if as_json:
        click.echo(json.dumps(report, default=str))
        return
    _print_report(report)


def _check_live_run(report: dict[str, Any], run_id: str | None, db_path: str, pid: int) -> None:
    """The live status is that of the run in progress only: `--run` must name it (exactly or by a
    unique prefix), as `Store.resolve_run` would; another run of the database cannot be read until the
    run ends, and an unknown one is named as such."""
    running = report["run"]
    runs = report.pop("runs", [running])
    if run_id is None or run_id == running:
        return
    matches = [r for r in runs if r.startswith(run_id)]
    if matches == [running]:
        return
    if not matches:
        fail(f"no run matches {run_id!r} in {db_path}; runs: {', '.join(runs)}")
    if len(matches) > 1 and run_id not in matches:
        fail(f"{len(matches)} runs match {run_id!r} in {db_path}: {', '.join(matches)}")
    asked = run_id if run_id in matches else matches[0]
    fail(
        f"{db_path} is in use by pid {pid}, which is running run {running}, so only that run's live status "
        f"can be read now; the status of run {asked} can be read when it ends"
    )


def _print_report(report: dict[str, Any]) -> None:
    console.print(f"run [bold]{report['run']}[/]", highlight=False)
    for down in report.get("outages", []):  # only in the live status of a running run
        console.print(
            f"[yellow]endpoint {down['endpoint']} unreachable since {down['since']}[/] ({down['reason']}), "
            "retrying",
            highlight=False,
        )
    table = Table("stage", "done", "dropped", "failed", "pending", "records", box=None)
    for name, counts in report["stages"].items():
        table.add_row(
            name,
            str(counts["done"]),
            str(report["dropped"][name]),
            str(counts["failed"]),
            str(counts["pending"]),
            str(report["records"][name]),
        )
    console.print(table)
    if report["usage"]:
        usage = Table(
            "stage",
            "model",
            "calls",
            "cached",
            "failed",
            "prompt tok",
            "completion tok",
            "cost $",
            box=None,
            title="LLM usage",
            title_justify="left",
        )
        for u in report["usage"]:
            usage.add_row(
                u["stage"],
                u["model"],
                str(u["calls"]),
                str(u["cached"]),
                str(u["failed"]),
                str(u["prompt_tokens"]),
                str(u["completion_tokens"]),
                f"{u['cost_usd']:.4f}",
            )
        console.print(usage)
    for cell, fill in report.get("coverage", {}).items():
        coverage = Table(
            cell, "target", "selected", "final", box=None, title=f"Coverage per {cell}", title_justify="left"
        )
        for name, counts in fill.items():
            coverage.add_row(name, str(counts["target"]), str(counts["selected"]), str(counts["final"]))
        console.print(coverage)
    refusals = report.get("generator_refusals") or {}
    if refusals:
        table = Table(
            "category", "written", "refused", "rate", "rewrites that lost the request", box=None,
            title="Generator refusals per category", title_justify="left",
        )  # fmt: skip
        for code, counts in refusals.items():
            table.add_row(
                code, str(counts["written"]), str(counts["refused"]), f"{counts['rate']:.0%}",
                str(counts["lost_request"]),
            )  # fmt: skip
        console.print(table)
        if report.get("advice"):
            console.print(report["advice"], highlight=False)
    if report["failures"]:
        failures = Table("stage", "items", "reason", box=None, title="Failures", title_justify="left")
        for f in report["failures"]:
            failures.add_row(f["stage"], str(f["count"]), f["reason"])
        console.print(failures)
        console.print("retry them with: safeset run CONFIG --retry-failed", highlight=False)
