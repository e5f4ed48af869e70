"""A stage that calls an in-process engine keeps twice the engine's batch in flight (its default
concurrency, 64, would leave most of a vLLM batch of 256 empty); a concurrency set in the config wins.
Run on the real hf engine with the tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import validate_config
from pipeline.llm.backends.hf_backend import HFBackend
from pipeline.llm.roles import HFRole, OpenAIRole, Roles, VLLMRole
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
