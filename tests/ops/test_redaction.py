"""Credentials in endpoint URLs never reach a log: real `safeset run -v` processes whose endpoints carry
user:password@ and query-string tokens (`?api_key=`, `&token=`), given on the command line and in a
config. httpx and openai log every request's URL at debug; each line is still there, redacted."""

from __future__ import annotations

import secrets

import pytest

from tests.ops.helpers import ServerProcess, safeset

WIDE = {"COLUMNS": "400"}  # log lines unwrapped, so a secret cannot hide across a line break


@pytest.fixture(scope="module")
def server():
    with ServerProcess() as server:
        yield server


def secret(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


def test_a_password_in_the_endpoint_url_is_not_logged(server, tmp_path):
    password = secret("pw")
    config = tmp_path / "small.yaml"
    config.write_text(
        "name: creds\nstages: {domains: {scenarios_per_category: 2, categories: [S1]}, scenarios: {}}\n"
    )
    endpoint = server.url.replace("http://", f"http://safeset:{password}@")
    result = safeset(
        "run", str(config), "--db", str(tmp_path / "r.duckdb"), "--endpoint", endpoint, "--model", "scripted",
        "-v", env=WIDE,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert f"HTTP Request: POST {server.url}/chat/completions" in output  # the request line, redacted
    assert password not in output and "safeset:" not in output


def test_query_string_tokens_are_not_logged_even_in_errors(server, tmp_path):
    token, key = secret("tok"), secret("key")
    config = tmp_path / "query.yaml"
    config.write_text(
        "name: query\nroles: {default: {backend: openai, model: scripted, max_retries: 0,\n"
        f"  base_urls: ['{server.url}?api_key={key}&token={token}']}}}}\n"
        "stages: {domains: {scenarios_per_category: 1, categories: [S1]}, scenarios: {}}\n"
    )
    result = safeset("run", str(config), "--db", str(tmp_path / "q.duckdb"), "-v", env=WIDE)
    output = result.stdout + result.stderr
    # The query string breaks the route (HTTP 404), which stops the run: the message and every
    # request line name the endpoint without its query.
    assert result.returncode == 2, output[-2000:]
    assert "HTTP Request: POST http://127.0.0.1:" in output
    assert token not in output and key not in output and "api_key=" not in output
