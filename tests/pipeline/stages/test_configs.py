"""The shipped TRIDENT configs validate, and the quickstart runs end to end with --endpoint."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.stages import STAGES
from tests.pipeline.stages.conftest import Run
from tests.pipeline.stages.trident_world import World


@pytest.mark.parametrize(
    ("name", "core", "edge"), [("quickstart", 2 * 14, 2 * 6), ("core", 1900 * 14, 0), ("edge", 0, 700 * 28)]
)
def test_shipped_configs_validate_and_state_their_targets(name, core, edge):
    for overrides in ({}, {"endpoint": "http://localhost:8000/v1", "model": "any"}):
        plan = load_config(f"configs/{name}.yaml", **overrides, stages=STAGES)
        stages = {s.cls.name: s.params for s in plan.stages}
        domains = len(stages["domains"].categories)
        assert (stages["dedup"].per_category * domains if "core" in stages else 0) == core
        assert (
            stages["tactics"].per_tactic * len(stages["tactics"].tactics) if "edge" in stages else 0
        ) == edge


def test_the_quickstart_runs_with_an_endpoint(chat_server, db_path):
    server = chat_server(script=World())
    args = ["configs/quickstart.yaml", "--db", str(db_path), "--endpoint", server.url, "--model", "scripted"]
    result = CliRunner().invoke(main, ["run", *args])
    assert result.exit_code == 0, result.output
    run = Run(db_path)
    assert Counter(r.category for r in run.records("core")) == {f"S{i}": 2 for i in range(1, 15)}
    assert Counter(r.tactic for r in run.records("edge")) == {
        t: 2
        for t in (
            "persona_modulation",
            "past_tense",
            "renellm",
            "cipher",
            "low_resource_language",
            "code_injection",
        )
    }
    run.close()
    status = CliRunner().invoke(main, ["status", "--db", str(db_path), "--json"])
    coverage = json.loads(status.output)["coverage"]
    assert all(cell["final"] == cell["target"] for cells in coverage.values() for cell in cells.values())
    shown = CliRunner().invoke(main, ["status", "--db", str(db_path)])
    assert "Coverage per category" in shown.output and "Coverage per tactic" in shown.output
