"""TRIDENT end to end on a real vLLM server (the tiny random model): structure only. Its text is
noise, but guided decoding keeps every answer inside the schema, so every stage runs and every
dataset row traces back to its persona, scenario and domain."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.datasets import CoreRow, EdgeRow
from tests.pipeline.stages.conftest import Run

pytestmark = pytest.mark.vllm

CONFIG = {
    "name": "e2e",
    "seed": 0,
    "stages": {
        "domains": {"categories": ["S1", "S7", "S13"], "scenarios_per_category": 2},
        "scenarios": {"max_tokens": 64},
        "personas": {"max_tokens": 192},
        "related_personas": {"depth": 1, "fanout": 1, "max_tokens": 192},
        "persona_pool": {},
        "instructions": {"per_pair": 2, "max_tokens": 64},
        # the random judge: a coin per item; JSON under guided decoding, as noise holds no text format
        "safety_filter": {"temperature": 1.0, "max_tokens": 128, "answer": "json"},
        "dedup": {},
        "core": {"max_tokens": 64, "check": False},  # at temperature 0 a random checker is constant
        "tactics": {"per_tactic": 2, "tactics": ["cipher", "code_injection", "past_tense"]},
        "rewrite": {"max_tokens": 96},
        "edge": {"max_tokens": 64, "check": False},
    },
}


def test_every_stage_runs_and_every_row_has_its_lineage(vllm_server, write_config, db_path):
    path = write_config(CONFIG)
    args = [
        "run",
        str(path),
        "--db",
        str(db_path),
        "--endpoint",
        vllm_server.url,
        "--model",
        vllm_server.model,
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    run = Run(db_path)
    ran = {stage for (stage,) in run.store.con.execute("SELECT DISTINCT stage FROM progress").fetchall()}
    assert ran == set(CONFIG["stages"]) - {"domains"}
    core, edge = run.records("core"), run.records("edge")
    assert core and edge
    persona_ids = {r.id for stage in ("personas", "related_personas") for r in run.records(stage)}
    for record in [*core, *edge]:
        (EdgeRow if record.stage == "edge" else CoreRow).model_validate(record.data)
        assert record.model == "tiny" and record.prompt_name == "aligned_response"
        chain = {r.stage: r for r in run.ancestors(record)}
        assert {
            "domains",
            "scenarios",
            "personas",
            "persona_pool",
            "instructions",
            "safety_filter",
            "dedup",
        } <= set(chain)
        assert record.persona_id in persona_ids and record.category == chain["domains"].category
    assert all(r.tactic in ("cipher", "code_injection", "past_tense") for r in edge)
    run.close()
