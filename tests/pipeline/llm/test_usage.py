"""Tokens and cost per stage and model, from each role's price table, as `safeset status` shows them;
and an embedded model that cannot be loaded, as `safeset run` reports it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.llm.types import ChatRequest
from pipeline.records import Record
from pipeline.stage import Stage
from tests.conftest import scripted_roles


class JudgeEcho(Stage):
    """A stage that exists only in this test: one judge call per scenario."""

    name = "judge_echo"
    consumes = ("scenarios",)
    roles = ("judge",)

    async def process(self, item: Record) -> list[Record]:
        request = ChatRequest(messages=({"role": "user", "content": "judge " + item.data["scenario"]},))
        result = await self.ctx.llm("judge").complete(request)
        return [self.ctx.record(parents=(item,), data={"verdict": result.text})]


def test_status_shows_cost_per_stage_and_model_from_each_price_table(
    chat_server, write_config, db_path, monkeypatch
):
    from pipeline.kinds import RUN_KINDS

    monkeypatch.setitem(RUN_KINDS, "run", [*RUN_KINDS["run"], JudgeEcho])
    server = chat_server(models=("scripted", "judge-model"))
    roles = scripted_roles(server, price={"prompt_per_mtok": 1.0, "completion_per_mtok": 2.0})
    roles["judge"] = {
        "backend": "openai",
        "model": "judge-model",
        "base_urls": [server.url],
        "price": {"prompt_per_mtok": 10.0, "completion_per_mtok": 30.0},
    }
    config = write_config(
        {
            "name": "cost",
            "roles": roles,
            "stages": {"domains": {"scenarios_per_category": 1}, "scenarios": {}, "judge_echo": {}},
        }
    )
    ran = CliRunner().invoke(main, ["run", str(config), "--db", str(db_path)])
    assert ran.exit_code == 0, ran.output

    report = json.loads(CliRunner().invoke(main, ["status", "--db", str(db_path), "--json"]).output)
    rows = {(u["stage"], u["model"]): u for u in report["usage"]}
    assert set(rows) == {("scenarios", "scripted"), ("judge_echo", "judge-model")}
    for (_, _), row in rows.items():
        assert row["calls"] == 14 and row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
    scenarios, judge = rows[("scenarios", "scripted")], rows[("judge_echo", "judge-model")]
    assert scenarios["cost_usd"] == pytest.approx(
        (scenarios["prompt_tokens"] * 1.0 + scenarios["completion_tokens"] * 2.0) / 1e6
    )
    assert judge["cost_usd"] == pytest.approx(
        (judge["prompt_tokens"] * 10.0 + judge["completion_tokens"] * 30.0) / 1e6
    )
    assert report["cost_usd"] == pytest.approx(scenarios["cost_usd"] + judge["cost_usd"], abs=1e-6)

    table = CliRunner().invoke(main, ["status", "--db", str(db_path)]).output
    assert "judge-model" in table and f"{judge['cost_usd']:.4f}" in table


def test_run_with_an_unloadable_embedded_model_exits_with_one_clear_message(write_config, db_path, tmp_path):
    missing = str(tmp_path / "no-model-here")
    config = write_config(
        {
            "name": "hf-missing",
            "roles": {"default": {"backend": "hf", "model": missing}},
            "stages": {"domains": {"scenarios_per_category": 1}, "scenarios": {}},
        }
    )
    result = CliRunner().invoke(main, ["run", str(config), "--db", str(db_path)])
    assert result.exit_code == 2
    assert result.output.count("cannot load the model") == 1 and missing in result.output
    assert "--endpoint URL --model NAME" in result.output and "Traceback" not in result.output
