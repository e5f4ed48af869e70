"""Options and error handling shared by the commands."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

DEFAULT_DB = "data/safeset.duckdb"

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


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the errors a user can fix (config, database, backend) into a message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pipeline.config import ConfigError
        from pipeline.llm.types import FatalLLMError
        from pipeline.store import StoreError

        try:
            return fn(*args, **kwargs)
        except (ConfigError, StoreError, FatalLLMError) as exc:
            fail(str(exc))

    return wrapper


_NOISY = ("httpx", "httpcore", "openai", "urllib3", "filelock", "sentence_transformers", "aiohttp")


def setup_logging(verbose: bool) -> None:
    """safeset's own messages at INFO (DEBUG with --verbose); libraries' chatter only with --verbose.
    Every record goes through the one rich handler, so each line appears once."""
    from huggingface_hub.utils import logging as hub_logging
    from rich.logging import RichHandler

    hub_logging.get_logger().handlers.clear()  # its own stderr handler would print each line again

    handler = RichHandler(console=err_console, show_path=verbose, markup=False)
    if not verbose:
        handler.addFilter(lambda r: r.levelno >= logging.WARNING or not r.name.startswith(_NOISY))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(message)s", handlers=[handler], force=True
    )
