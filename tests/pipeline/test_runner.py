"""The runner on the real stages and a scripted OpenAI-compatible server: completion, resume from the
cache, failures as rows, overlap of stages, limits."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from pipeline.config import validate_config
from pipeline.llm.types import FatalLLMError
from pipeline.records import Record
from pipeline.runner import Runner
from pipeline.stage import Stage
from pipeline.stages import STAGES
from pipeline.store import Store
from tests.conftest import scripted_roles
from tests.servers.chat_server import Faults, Latency


def config(server, per_category: int = 2, **scenarios: Any) -> dict:
    return {
        "name": "t",
        "seed": 5,
        "roles": scripted_roles(server),
        "stages": {"domains": {"scenarios_per_category": per_category}, "scenarios": scenarios},
    }


def run(raw: dict, db_path, stages: list[type[Stage]] = STAGES, **kwargs: Any):
    store = Store.open(db_path)
    try:
        return Runner(validate_config(raw, stages=stages), store, argv=["test"], **kwargs).run()
    finally:
        store.close()


def dataset(db_path, stage: str) -> dict[str, dict]:
    store = Store.open(db_path, read_only=True)
    try:
        run_id = store.resolve_run(None)
        return {r.id: r.data for r in store.records(run_id, stage)}
    finally:
        store.close()


def test_a_run_completes_with_lineage_and_a_rerun_is_a_no_op(chat_server, db_path):
    server = chat_server()
    summary = run(config(server), db_path)
    assert summary.status == "completed" and not summary.resumed
    assert summary.counts == {"scenarios": {"done": 28}}
    store = Store.open(db_path, read_only=True)
    scenarios = store.records(summary.run_id, "scenarios")
    assert len(scenarios) == 28
    for record in scenarios:
        parent = store.get(record.parent_ids[0])
        assert parent.stage == "domains" and record.category == parent.category
        assert (record.prompt_name, record.prompt_version, record.model) == ("scenario", 2, "scripted")
        assert record.seed is not None and store.cache_entry(record.request_key) is not None
    assert {r.category for r in scenarios} == {f"S{i}" for i in range(1, 15)}
    store.close()

    calls = server.stats.requests
    again = run(config(server), db_path)
    assert again.resumed and again.run_id == summary.run_id
    assert server.stats.requests == calls
    assert len(dataset(db_path, "scenarios")) == 28


def test_cached_answers_cost_no_call_when_work_is_redone(chat_server, db_path):
    server = chat_server()
    run(config(server), db_path)
    before = dataset(db_path, "scenarios")
    store = Store.open(db_path)  # forget that scenarios finished, keep the LLM cache
    store.con.execute("DELETE FROM progress; DELETE FROM records WHERE stage = 'scenarios'")
    store.close()
    calls = server.stats.requests
    run(config(server), db_path)
    assert server.stats.requests == calls
    assert dataset(db_path, "scenarios") == before
    store = Store.open(db_path, read_only=True)
    usage = store.usage(store.resolve_run(None))
    assert sum(u["cached"] for u in usage) == 28 and sum(u["calls"] for u in usage) == 28
    store.close()


def test_schema_breaking_answers_are_retried_then_recorded_as_failures(chat_server, db_path):
    broken = {"on": True}

    def script(body: dict) -> str | None:
        if broken["on"] and "Defamation" in body["messages"][-1]["content"]:
            return "I would rather write prose than JSON."
        return None

    server = chat_server(script=script)
    summary = run(config(server), db_path)
    assert summary.counts["scenarios"] == {"done": 26, "failed": 2}
    store = Store.open(db_path, read_only=True)
    (reason,) = store.failure_reasons(summary.run_id)
    assert reason["count"] == 2 and "ScenarioAnswer schema 3 time(s)" in reason["reason"]
    assert "not valid JSON" in reason["reason"]
    store.close()

    calls = server.stats.requests
    run(config(server), db_path)  # failures are final until asked to retry
    assert server.stats.requests == calls
    broken["on"] = False
    retried = run(config(server), db_path, retry_failed=True)
    assert retried.counts["scenarios"] == {"done": 28}


def test_transport_faults_lose_nothing_and_repeat_no_answered_call(chat_server, db_path):
    faults = Faults(rate_429=0.15, rate_500=0.05, rate_malformed=0.03, rate_schema_break=0.1)
    server = chat_server(faults=faults, latency=Latency(base=0.002))
    summary = run(config(server, per_category=5), db_path)
    assert summary.counts == {"scenarios": {"done": 70}}
    assert server.stats.faults["429"] > 0 and server.stats.faults["schema_break"] > 0
    assert max(server.stats.answered.values()) == 1
    assert len(dataset(db_path, "scenarios")) == 70


def test_max_items_then_the_rest(chat_server, db_path):
    server = chat_server()
    run(config(server), db_path, max_items=5)
    assert len(dataset(db_path, "scenarios")) == 5
    store = Store.open(db_path, read_only=True)
    assert store.count_pending(store.resolve_run(None), "scenarios", ["domains"]) == 0  # 5 domains planned
    store.close()
    run(config(server), db_path)
    assert len(dataset(db_path, "scenarios")) == 28


def test_an_unknown_model_stops_the_run_with_a_clear_error(chat_server, db_path):
    server = chat_server(models=("other",))
    with pytest.raises(FatalLLMError, match="model 'scripted' or its route was not found"):
        run(config(server), db_path)
    store = Store.open(db_path, read_only=True)
    (row,) = store.con.execute("SELECT status FROM sessions").fetchall()
    assert row == ("crashed",)
    store.close()


class EchoStage(Stage):
    """A downstream stage that exists only in this test, to watch records flow between stages."""

    name = "echo"
    consumes = ("scenarios",)
    roles = ("generator",)

    async def process(self, item: Record):
        from pipeline.llm.types import ChatRequest

        request = ChatRequest(messages=({"role": "user", "content": "echo " + item.data["scenario"]},))
        result = await self.ctx.llm("generator").complete(request)
        return [self.ctx.record(parents=(item,), data={"echo": result.text})]


def test_records_flow_to_the_next_stage_before_the_previous_one_ends(chat_server, db_path):
    seen: list[tuple[float, str]] = []

    def script(body: dict) -> None:
        text = body["messages"][-1]["content"]
        seen.append((time.monotonic(), "echo" if text.startswith("echo ") else "scenario"))
        return None

    server = chat_server(script=script, latency=Latency(base=0.05))
    raw = config(server, per_category=3, concurrency=4)
    raw["stages"]["echo"] = {}
    summary = run(raw, db_path, stages=[*STAGES, EchoStage])
    assert summary.counts == {"scenarios": {"done": 42}, "echo": {"done": 42}}
    first_echo = min(t for t, kind in seen if kind == "echo")
    last_scenario = max(t for t, kind in seen if kind == "scenario")
    assert first_echo < last_scenario - 0.2
    echoes = dataset(db_path, "echo")
    assert all(json.dumps(v) for v in echoes.values()) and len(echoes) == 42
