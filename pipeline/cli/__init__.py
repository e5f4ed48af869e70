"""The `safeset` command: a thin layer over the Python API (pipeline.runner, pipeline.store, ...).

Each command lives in its own module and registers itself on `main`; every command's help ends with
an example.
"""

from __future__ import annotations

import os
import signal
import sys

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


try:  # commands register on import; Ctrl-C while they load is an interrupt like any other
    from pipeline.cli import (  # noqa: E402,F401
        eval,
        export,
        finetune,
        inspect,
        judges,
        report,
        run,
        runs,
        score,
        serve,
        status,
        submit,
    )
except KeyboardInterrupt:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not turn this into a traceback
    sys.stderr.write("Interrupted.\n")
    sys.stderr.flush()
    os._exit(130)  # nothing to clean up yet; sys.exit could still end as a SIGINT death
