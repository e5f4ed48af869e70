"""The CLI: every command documented with an example, and the reading commands on a real run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from tests.conftest import scripted_roles


def commands() -> list[str]:
    return sorted(main.commands)


def test_top_level_help_lists_every_command():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in commands():
        assert name in result.output


@pytest.mark.parametrize("name", commands())
def test_every_command_has_help_with_an_example(name):
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output, f"`safeset {name} --help` shows no example"
    assert len(main.commands[name].help or "") > 40


def test_the_readme_documents_every_command():
    readme = Path("README.md").read_text()
    for name in commands():
        assert f"safeset {name}" in readme, f"README does not mention `safeset {name}`"


WRITERS = {"export", "finetune", "report"}  # the commands that write a file or folder: `--out`
OTHER_SPELLINGS = {"--output", "--out-dir", "--output-dir", "--outdir", "--dest"}  # hidden aliases at most


def test_one_name_per_idea_across_commands():
    for name, command in main.commands.items():
        shown = {opt for p in command.params if not getattr(p, "hidden", False) for opt in p.opts}
        assert not shown & OTHER_SPELLINGS, f"`safeset {name}` shows {shown & OTHER_SPELLINGS}; call it --out"
        assert ("--out" in shown) == (name in WRITERS), name


def test_report_takes_its_old_output_spelling_as_a_hidden_alias(tmp_path, db_path):
    from pipeline.store import Store

    store = Store.open(db_path)
    store.ensure_run("empty-run", "empty", {}, 0, None, "test")
    store.close()
    for flag in ("--out", "-o", "--output"):
        page = tmp_path / f"{flag.strip('-')}.html"
        result = CliRunner().invoke(main, ["report", "--db", str(db_path), flag, str(page), "--no-semantic"])
        assert result.exit_code == 0 and page.exists(), result.output
    shown = CliRunner().invoke(main, ["report", "--help"]).output
    assert "--out" in shown and "--output" not in shown


@pytest.fixture
def finished_run(chat_server, write_config, db_path):
    server = chat_server(script=lambda body: "no json" if "Hate" in str(body["messages"]) else None)
    config = write_config(
        {
            "name": "cli",
            "roles": scripted_roles(server, price={"prompt_per_mtok": 1.0, "completion_per_mtok": 2.0}),
            "stages": {"domains": {"scenarios_per_category": 1}, "scenarios": {}},
        }
    )
    result = CliRunner().invoke(main, ["run", str(config), "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    return db_path


def test_status_json_has_the_documented_shape(finished_run):
    result = CliRunner().invoke(main, ["status", "--db", str(finished_run), "--json"])
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert report["stages"] == {
        "domains": {"done": 14, "pending": 0, "failed": 0},
        "scenarios": {"done": 13, "pending": 0, "failed": 1},
    }
    llm = report["llm"]
    assert set(llm) == {"calls", "cached", "prompt_tokens", "completion_tokens"}
    assert llm["calls"] == 13 + 3 and llm["cached"] == 0 and llm["prompt_tokens"] > 0
    expected_cost = (llm["prompt_tokens"] * 1.0 + llm["completion_tokens"] * 2.0) / 1e6
    assert report["cost_usd"] == pytest.approx(expected_cost)
    (failure,) = report["failures"]
    assert failure["stage"] == "scenarios" and "schema" in failure["reason"]


def test_status_table_and_runs(finished_run):
    status = CliRunner().invoke(main, ["status", "--db", str(finished_run)])
    assert status.exit_code == 0
    assert "scenarios" in status.output and "Failures" in status.output and "--retry-failed" in status.output
    runs = CliRunner().invoke(main, ["runs", "--db", str(finished_run), "--json"])
    (run,) = json.loads(runs.output)
    assert run["name"] == "cli" and run["status"] == "completed" and run["records"] == 27


def test_inspect_shows_lineage_prompt_and_outcomes(finished_run):
    from pipeline.store import Store

    store = Store.open(finished_run, read_only=True)
    scenario = store.records(store.resolve_run(None), "scenarios")[0]
    store.close()
    result = CliRunner().invoke(main, ["inspect", scenario.id[:8], "--db", str(finished_run), "--json"])
    info = json.loads(result.output)
    assert info["id"] == scenario.id and info["prompt_name"] == "scenario"
    (parent,) = info["parents"]
    assert parent["stage"] == "domains" and parent["category"] == scenario.category
    assert info["llm_call"]["request"]["template"] == "scenario@2"
    text = CliRunner().invoke(main, ["inspect", parent["id"], "--db", str(finished_run)])
    assert "scenarios: done" in text.output and scenario.id in text.output


def test_reading_commands_explain_a_missing_database(tmp_path):
    for args in (["status"], ["runs"], ["inspect", "abc"]):
        result = CliRunner().invoke(main, [*args, "--db", str(tmp_path / "none.duckdb")])
        assert result.exit_code == 2
        assert "no database at" in result.output
