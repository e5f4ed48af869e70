"""Options and error handling shared by the commands."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import click
from rich.console import Console

DEFAULT_DB = "data/safeset.duckdb"

# Exit codes (README: Exit codes). 1 is left to Python: an unexpected error, with its traceback.
EXIT_BAD_INPUT = 2  # a config, database, file or endpoint the user can fix; nothing half-written
EXIT_PENDING = 3  # stopped with work pending (an outage past the limit, --max-items); run it again
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM; finished work is committed

console = Console()
err_console = Console(stderr=True)

db_option = click.option(
    "--db",
    "db_path",
    default=DEFAULT_DB,
    show_default=True,
    type=click.Path(dir_okay=False),
    help="DuckDB file holding runs, records and the LLM cache.",
)
run_option = click.option("--run", "run_id", default=None, help="Run id or unique prefix (default: latest).")


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    from pipeline.llm.roles import redact_text

    err_console.print(f"[bold red]error:[/] {redact_text(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


@contextlib.contextmanager
def signals_noted() -> Iterator[list[int]]:
    """Within the block, SIGINT and SIGTERM are noted in the yielded list rather than raised: as a
    KeyboardInterrupt inside DuckDB, Ctrl-C would become a query error, or be lost."""
    noted: list[int] = []
    stop_signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda sig, frame: noted.append(sig)) for sig in stop_signals}
    try:
        yield noted
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def exit_interrupted(message: str = "[yellow]Interrupted.[/]", *, at_once: bool = False) -> None:
    """Exit with the interrupt code; further Ctrl-C are ignored from here on. `at_once` after a
    KeyboardInterrupt that has unwound everything: Python 3.11 may otherwise still end the process
    by SIGINT when the interrupt passed through code run by a C extension."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    err_console.print(message, highlight=False, soft_wrap=True)
    if at_once:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_INTERRUPTED)


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the errors a user can fix (config, stage input, database, backend) into a message and exit
    code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:  # before a run's own handler is installed, or in another command
            exit_interrupted(at_once=True)
        except Exception as exc:
            from pipeline.config import ConfigError
            from pipeline.llm.types import FatalLLMError
            from pipeline.stage import StageInputError
            from pipeline.store import StoreError

            if isinstance(exc, ConfigError | StageInputError | StoreError | FatalLLMError):
                fail(str(exc))
            raise

    return wrapper


_NOISY = ("httpx", "httpcore", "openai", "urllib3", "filelock", "sentence_transformers", "aiohttp")


class RedactUrls(logging.Filter):
    """Rewrites every record that reaches the handler, ours and third-party ones (httpx and openai log
    each request's URL at debug), so no URL is shown with its user:password@ or query string. A
    traceback holding such a URL is rendered here, redacted, instead of by the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        from pipeline.llm.roles import redact_text

        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            trace = "".join(traceback.format_exception(*record.exc_info))
            if redact_text(trace) != trace:
                message, record.exc_info, record.exc_text = f"{message}\n{trace}", None, None
        redacted = redact_text(message)
        if redacted != record.msg or record.args:
            record.msg, record.args = redacted, ()
        return True


def setup_logging(verbose: bool) -> None:
    """safeset's own messages at INFO (DEBUG with --verbose); libraries' chatter only with --verbose.
    Every record goes through the one rich handler, so each line appears once."""
    from huggingface_hub.utils import logging as hub_logging
    from rich.logging import RichHandler

    hub_logging.get_logger().handlers.clear()  # its own stderr handler would print each line again

    handler = RichHandler(console=err_console, show_path=verbose, markup=False)
    handler.addFilter(RedactUrls())
    if not verbose:
        handler.addFilter(lambda r: r.levelno >= logging.WARNING or not r.name.startswith(_NOISY))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(message)s", handlers=[handler], force=True
    )
