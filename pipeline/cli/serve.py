"""`safeset serve`: the service mode (pipeline.serve)."""

from __future__ import annotations

import socket

import click

from pipeline.cli.common import db_option, fail, setup_logging, user_errors
from pipeline.cli.group import main


@main.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8750, show_default=True)
@click.option(
    "--workers", type=click.IntRange(1, 64), default=2, show_default=True, help="Runs driven at once."
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging, and a line per request.")
@user_errors
def serve(db_path: str, host: str, port: int, workers: int, verbose: bool) -> None:
    """Serve the database over an HTTP API (/v1; OpenAPI at /v1/openapi.json) and drive the runs
    submitted to it, up to --workers at once. Runs left running by a killed server resume on start.

    Every route but /v1/health needs `Authorization: Bearer $SAFESET_TOKEN` when SAFESET_TOKEN is set;
    without it the server listens on loopback only. While it runs, `safeset status/inspect/export/
    report --db` on the same database go through it.

    \b
    Examples:
      SAFESET_TOKEN=$(openssl rand -hex 16) safeset serve --db data/safeset.duckdb
      curl -H "Authorization: Bearer $SAFESET_TOKEN" http://127.0.0.1:8750/v1/runs
    """
    setup_logging(verbose)
    from pipeline.serve.app import serve as run_server
    from pipeline.serve.settings import TOKEN_ENV, ServeSettings, is_loopback
    from pipeline.store import Store

    settings = ServeSettings.from_env(db_path, host=host, port=port, workers=workers)
    if settings.token is None and not is_loopback(host):
        fail(f"refusing to listen on {host} without a token: set {TOKEN_ENV} (every client then sends it as "
             "a bearer token), or listen on 127.0.0.1")  # fmt: skip
    _check_port(host, port)  # before the database is taken and its runs resumed
    store = Store.open(settings.db)
    try:
        run_server(settings, store, access_log=verbose)
    finally:
        store.close()


def _check_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            fail(f"cannot listen on {host}:{port}: {exc.strerror}; pass another --port or --host")
