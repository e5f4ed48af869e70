"""The TRIDENT pipeline on the scripted world: targets per domain and tactic are hit exactly, the
filter drops what the judge calls safe, and every dataset row traces back to its persona, scenario
and domain."""

from __future__ import annotations

from collections import Counter

import pytest

from pipeline.datasets import CoreRow, EdgeRow
from pipeline.stages import STAGES
from pipeline.status import run_status
from tests.pipeline.stages.conftest import TACTICS, Run, run, trident_config
from tests.pipeline.stages.trident_world import World
from tests.servers.chat_server import ChatServer

DOMAINS = ["S1", "S2", "S10", "S14"]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    world = World(safe_every=5, other_every=7, comply_first=True)
    server = ChatServer(script=world)
    server.start()
    db_path = tmp_path_factory.mktemp("trident") / "run.duckdb"
    try:
        summary = run(trident_config(server), db_path)
    finally:
        server.stop()
    result = Run(db_path)
    yield summary, result, world
    result.close()


def test_every_stage_finishes_without_failures(full_run):
    summary, _, _ = full_run
    assert summary.status == "completed"
    assert set(summary.counts) == {
        "scenarios", "personas", "related_personas", "persona_pool", "instructions", "safety_filter",
        "dedup", "core", "tactics", "rewrite", "edge",
    }  # fmt: skip
    assert not any(counts.get("failed") for counts in summary.counts.values())


def test_core_rows_hit_the_target_of_every_domain_spread_over_personas(full_run):
    _, result, _ = full_run
    assert result.count("core", "category") == {code: 6 for code in DOMAINS}
    for code in DOMAINS:
        personas = Counter(r.persona_id for r in result.records("core") if r.category == code)
        assert max(personas.values()) - min(personas.values()) <= 1  # spread, not first come
    dropped = [reason for status, reason in result.outcomes("dedup").values() if status == "dropped"]
    assert dropped and all(reason.startswith("over the S") for reason in dropped)


def test_edge_rows_hit_the_target_of_every_tactic_spread_over_domains(full_run):
    _, result, _ = full_run
    assert result.count("edge", "tactic") == {name: 5 for name in TACTICS}
    for name in TACTICS:
        domains = Counter(r.category for r in result.records("edge") if r.tactic == name)
        assert len(domains) == 4 and max(domains.values()) - min(domains.values()) <= 1
    plans = Counter((r.parent_ids[0], r.tactic) for r in result.records("tactics"))
    assert max(plans.values()) == 1  # an instruction never gets the same tactic twice


def test_rows_match_the_dataset_models(full_run):
    _, result, _ = full_run
    for record in result.records("core"):
        row = CoreRow.model_validate(record.data)
        assert row.category == record.category and row.response.startswith("I cannot help")
    for record in result.records("edge"):
        row = EdgeRow.model_validate(record.data)
        assert row.tactic == record.tactic and row.instruction != row.original_instruction
        assert record.prompt_name == "aligned_response" and record.model == "scripted"


def test_every_row_traces_back_to_persona_scenario_and_domain(full_run):
    _, result, _ = full_run
    persona_ids = {r.id for stage in ("personas", "related_personas") for r in result.records(stage)}
    for stage in ("core", "edge"):
        for record in result.records(stage):
            chain = result.ancestors(record)
            stages = [r.stage for r in chain]
            assert {"domains", "scenarios", "personas", "persona_pool", "instructions", "safety_filter",
                    "dedup"} <= set(stages)  # fmt: skip
            if stage == "edge":
                assert {"tactics", "rewrite"} <= set(stages)
            assert record.persona_id in persona_ids
            persona = next(r for r in chain if r.id == record.persona_id)
            assert record.data["persona"] == persona.data["text"]
            domain = next(r for r in chain if r.stage == "domains")
            assert record.category == domain.category == domain.data["category"]
            scenario = next(r for r in chain if r.stage == "scenarios")
            assert scenario.prompt_name == "scenario" and scenario.request_key


def test_the_filter_drops_what_the_judge_calls_safe_and_keeps_disagreement(full_run):
    _, result, _ = full_run
    instructions = {r.id: r.data["instruction"] for r in result.records("instructions")}
    outcomes = result.outcomes("safety_filter")
    assert set(outcomes) == set(instructions)
    for item, (status, reason) in outcomes.items():
        planted_safe = "/safe]" in instructions[item]
        assert (status == "dropped") == planted_safe
        if planted_safe:
            assert reason == "judged safe by scripted"
    kept = result.records("safety_filter")
    others = [r for r in kept if "/other]" in r.data["instruction"]]
    assert others and all(not r.data["agrees"] and r.data["judged_category"] != r.category for r in others)
    assert all(r.data["agrees"] for r in kept if "/other]" not in r.data["instruction"])


def test_responses_that_comply_were_regenerated(full_run):
    _, result, world = full_run
    rows = len(result.records("core")) + len(result.records("edge"))
    requests = {
        r.data.get("original_instruction", r.data["instruction"])
        for s in ("core", "edge")
        for r in result.records(s)
    }
    assert world.calls["ResponseCheck"] == rows + len(requests)  # each first reply was regenerated once
    assert world.calls["text"] == world.calls["ResponseCheck"]


def test_status_shows_the_fill_of_every_cell(full_run):
    _, result, _ = full_run
    coverage = run_status(result.store, result.run_id, STAGES)["coverage"]
    assert coverage["category"] == {code: {"target": 6, "selected": 6, "final": 6} for code in DOMAINS}
    assert coverage["tactic"] == {name: {"target": 5, "selected": 5, "final": 5} for name in TACTICS}
