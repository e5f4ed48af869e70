"""The `safeset` command: a thin layer over the Python API (pipeline.runner, pipeline.store, ...).

Each command lives in its own module and registers itself on `main` (pipeline/cli/group.py); every
command's help ends with an example.
"""

from __future__ import annotations

import os
import signal
import sys

from pipeline.cli.group import main as main

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
