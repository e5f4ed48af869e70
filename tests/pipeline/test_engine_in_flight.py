"""A stage that calls an in-process engine keeps twice the engine's batch in flight (its default
concurrency, 64, would leave most of a vLLM batch of 256 empty); a concurrency set in the config wins.
Run on the real hf engine with the tiny model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import validate_config
from pipeline.llm.backends.hf_backend import HFBackend
from pipeline.llm.backends.vllm_backend import engine_arguments
from pipeline.llm.roles import VLLM_LARGEST_DEFAULT_BATCH, HFRole, OpenAIRole, Roles, VLLMRole
from pipeline.runner import Runner
from pipeline.stages import STAGES
from pipeline.store import Store


def test_in_flight_is_twice_the_largest_in_process_batch_of_the_roles() -> None:
    vllm = VLLMRole(backend="vllm", model="/m", batch_size=256)
    hf = HFRole(backend="hf", model="/m", batch_size=8)
    remote = OpenAIRole(backend="openai", model="m", base_urls=["http://127.0.0.1:1/v1"])
    assert Roles(default=remote).engine_in_flight(("generator",)) == 0
    assert Roles(default=remote, judge=vllm).engine_in_flight(("generator",)) == 0
    assert Roles(default=remote, judge=vllm).engine_in_flight(("generator", "judge")) == 512
    assert Roles(default=remote, target=[hf, vllm]).engine_in_flight(("target",)) == 512
    assert Roles(default=hf).engine_in_flight(("responder",)) == 16
    # the batch named the vLLM way counts the same
    named = VLLMRole(backend="vllm", model="/m", engine_args={"max_num_seqs": 128})
    assert Roles(default=named).engine_in_flight(("generator",)) == 256


def test_a_vllm_role_without_a_batch_fills_the_largest_batch_vllm_chooses_by_itself() -> None:
    # vLLM runs 1024 sequences at once on an 80 GB GPU when told nothing: twice that in flight, so
    # such an engine is never half full (a CPU's 256 only gets a longer queue)
    unset = VLLMRole(backend="vllm", model="/m")
    assert Roles(default=unset).engine_in_flight(("generator",)) == 2 * VLLM_LARGEST_DEFAULT_BATCH == 2048
    assert "max_num_seqs" not in engine_arguments(unset)  # vLLM keeps its own choice


def test_batch_size_is_the_engines_max_num_seqs() -> None:
    arguments = engine_arguments(
        VLLMRole(backend="vllm", model="/m", batch_size=96, engine_args={"enforce_eager": True})
    )
    assert arguments["max_num_seqs"] == 96 and arguments["enforce_eager"] is True
    same = VLLMRole(backend="vllm", model="/m", batch_size=96, engine_args={"max_num_seqs": 96})
    assert engine_arguments(same)["max_num_seqs"] == 96


@pytest.mark.parametrize(
    ("role", "problem"),
    [
        (
            {"batch_size": 64, "engine_args": {"max_num_seqs": 128}},
            "batch_size 64 and engine_args.max_num_seqs 128",
        ),
        ({"engine_args": {"max_num_seqs": "many"}}, "engine_args.max_num_seqs must be a whole number"),
        ({"engine_args": {"max_num_seqs": 0}}, "engine_args.max_num_seqs must be a whole number"),
        ({"batch_size": 0}, "roles.default.batch_size: "),
    ],
)
def test_a_contradictory_or_bad_engine_batch_is_refused_before_the_run(
    tmp_path: Path, role: dict, problem: str
) -> None:
    raw = {"name": "t", "roles": {"default": {"backend": "vllm", "model": "/m", **role}}}
    path = tmp_path / "run.yaml"
    path.write_text(json.dumps(raw))
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", str(path), "--db", str(tmp_path / "run.duckdb")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert problem in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "run.duckdb").exists()


@pytest.mark.parametrize(("scenarios", "expected_peak"), [({}, 80), ({"concurrency": 24}, 24)])
def test_a_stage_on_an_in_process_engine_fills_its_batch_unless_told_otherwise(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenarios: dict, expected_peak: int
) -> None:
    calls = {"now": 0, "peak": 0}
    complete = HFBackend.complete

    async def counted(self, request):
        calls["now"] += 1
        calls["peak"] = max(calls["peak"], calls["now"])
        try:
            return await complete(self, request)
        finally:
            calls["now"] -= 1

    monkeypatch.setattr(HFBackend, "complete", counted)
    raw = {
        "name": "t",
        "seed": 5,
        "roles": {"default": {"backend": "hf", "model": str(tiny_model), "batch_size": 40}},
        # 14 categories x 6: 84 scenarios, more than twice the batch
        "stages": {"domains": {"scenarios_per_category": 6}, "scenarios": {"max_tokens": 4, **scenarios}},
    }
    store = Store.open(tmp_path / "run.duckdb")
    try:
        summary = Runner(validate_config(raw, stages=STAGES), store, argv=["test"]).run()
    finally:
        store.close()
    assert summary.status == "completed"
    assert sum(summary.counts["scenarios"].values()) == 84  # answered or failed as rows, every one
    assert calls["peak"] == expected_peak
