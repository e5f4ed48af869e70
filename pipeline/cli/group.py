"""The `safeset` command group that every command module registers on."""

from __future__ import annotations

import click

from pipeline import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="safeset")
def main() -> None:
    """safeset: generate LLM safety-alignment datasets with lineage in DuckDB.

    \b
    Start here:
      safeset run configs/quickstart.yaml     generate a small dataset
      safeset status                          what is done, pending and failed
    """
