"""`safeset export`: a run's datasets as files for fine-tuning tools, optionally pushed to the hub."""

from __future__ import annotations

import click

from pipeline.cli.common import console, db_option, fail, run_option, user_errors
from pipeline.cli.group import main


@main.command()
@db_option
@run_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["parquet", "jsonl", "hf", "sft", "dpo", "llamafactory"]),
    default="parquet",
    show_default=True,
    help="parquet/jsonl/hf: every column; sft: chat messages; dpo: prompt/chosen/rejected; "
    "llamafactory: sharegpt files + dataset_info.json.",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to write (replaced).")
@click.option(
    "--test-fraction",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.1,
    show_default=True,
    help="Share of each category that goes to the test split.",
)
@click.option("--license", "license_", default="cc-by-4.0", show_default=True, help="License in the card.")
@click.option("--push-to-hub", "repo", metavar="REPO", help="Also upload to this hub dataset repo.")
@click.option("--public", is_flag=True, help="Make the hub repo public (default: private).")
@click.option("--gated", type=click.Choice(["auto", "manual"]), help="Ask users to accept terms on the hub.")
@click.option(
    "--reviewed-only",
    is_flag=True,
    help="Leave out rows nobody reviewed by hand (rejected rows are always left out, edits always applied).",
)
@user_errors
def export(
    db_path: str,
    run_id: str | None,
    fmt: str,
    out: str,
    test_fraction: float,
    license_: str,
    repo: str | None,
    public: bool,
    gated: str | None,
    reviewed_only: bool,
) -> None:
    """Export a run's datasets (core, edge, overrefusal_test, overrefusal_align) with train/test splits
    stratified by category, a dataset card (README.md) and a manifest (export.json).

    Rows stream from DuckDB in batches, so memory stays flat for any size. A re-export of the same run
    gives the same split. The hub token comes only from the HF_TOKEN environment variable.

    \b
    Examples:
      safeset export --format sft --out exports/sft
      safeset export --format dpo --out exports/dpo --run overrefusal-1a2b
      HF_TOKEN=... safeset export --out exports/parquet --push-to-hub me/safety-data --gated auto
    """
    from pipeline.export import ExportError, export_run
    from pipeline.export.hub import push_to_hub
    from pipeline.serve.client import served_by

    server = served_by(db_path)
    if server is not None:  # `safeset serve` holds the database: the server exports, with its HF_TOKEN
        options = {"format": fmt, "test_fraction": test_fraction, "license": license_, "gated": gated,
                   "push_to_hub": repo, "public": public, "reviewed_only": reviewed_only}  # fmt: skip
        try:
            job = server.export(run_id, out, options)
        except ExportError as exc:
            fail(str(exc))
        console.print(f"exported run [bold]{job['run_id']}[/] as {fmt} to {out} (through {server.url})")
        if job["hub_url"]:
            console.print(
                f"pushed to {job['hub_url']} ({'public' if public else 'private'})", highlight=False
            )
        return
    try:
        manifest = export_run(
            db_path,
            out,
            fmt,
            run=run_id,
            test_fraction=test_fraction,
            license=license_,
            gated=gated,
            reviewed_only=reviewed_only,
        )
        for name, part in manifest["parts"].items():
            counts = ", ".join(f"{n} {split}" for split, n in part["rows"].items())
            console.print(f"  {name}: {counts}", highlight=False)
        console.print(f"exported run [bold]{manifest['run_id']}[/] as {fmt} to {out}", highlight=False)
        if repo:
            url = push_to_hub(out, repo, private=not public, gated=gated)
            console.print(f"pushed to {url} ({'public' if public else 'private'})", highlight=False)
    except ExportError as exc:
        fail(str(exc))
