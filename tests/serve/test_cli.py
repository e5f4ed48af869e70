"""The CLI while `safeset serve` holds the database: status, inspect, export and report go through
the server (during a run, too), `safeset run` says how to submit instead, and `safeset submit` does."""

from __future__ import annotations

import json

import yaml

from tests.ops.helpers import safeset
from tests.pipeline.stages.conftest import trident_config
from tests.pipeline.stages.trident_world import World
from tests.serve.conftest import TOKEN
from tests.servers.chat_server import ChatServer, Latency

AUTH = {"SAFESET_TOKEN": TOKEN}


def test_the_cli_goes_through_the_server(serve, tmp_path):
    with ChatServer(script=World(), latency=Latency(base=0.03)) as world:
        config = tmp_path / "run.yaml"
        config.write_text(yaml.safe_dump(trident_config(world, name="cli", seed=9)))
        served = serve()
        db = str(served.db)

        submitted = safeset("submit", str(config), "--db", db, env=AUTH)
        assert submitted.returncode == 0, submitted.stderr
        run_id = submitted.stdout.split("run ", 1)[1].split()[0]
        assert "queued" in submitted.stdout
        again = safeset("submit", str(config), "--db", db, env=AUTH)  # while it is queued or running
        assert "already" in again.stdout

        status = safeset("status", "--db", db, "--json", env=AUTH)  # while the run writes
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["run"] == run_id

        refused = safeset("run", str(config), "--db", db, env=AUTH)
        assert refused.returncode == 2
        assert f"safeset submit {config} --db {db}" in refused.stderr and "/v1/runs" in refused.stderr

        no_token = safeset("status", "--db", db, env={"SAFESET_TOKEN": ""})
        assert no_token.returncode == 2 and "401" in no_token.stderr and "SAFESET_TOKEN" in no_token.stderr

        served.wait_for(run_id)
        final = json.loads(safeset("status", "--db", db, "--json", "--run", run_id[:8], env=AUTH).stdout)
        assert final["stages"]["edge"] == {"done": 25, "pending": 0, "failed": 0}

    core = served.client.get(f"/v1/runs/{run_id}/records", params={"dataset": "core", "limit": 1}).json()
    record_id = core["items"][0]["id"]
    inspected = safeset("inspect", record_id[:12], "--db", db, "--json", env=AUTH)
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout) == served.client.get(f"/v1/records/{record_id}").json()

    out = tmp_path / "export"
    exported = safeset("export", "--db", db, "--format", "dpo", "--out", str(out), env=AUTH)
    assert exported.returncode == 2 and "overrefusal_align" in exported.stderr  # the CLI's own message
    exported = safeset("export", "--db", db, "--format", "jsonl", "--out", str(out), env=AUTH)
    assert exported.returncode == 0, exported.stderr
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["run_id"] == run_id and sum(manifest["parts"]["core"]["rows"].values()) == 24
    again = safeset("export", "--db", db, "--format", "jsonl", "--out", str(out), env=AUTH)
    assert again.returncode == 0, again.stderr  # an earlier export is replaced, as without a server

    page = tmp_path / "report.html"
    report = safeset("report", "--db", db, "--no-semantic", "--out", str(page), env=AUTH)
    assert report.returncode == 0, report.stderr
    assert page.read_text().startswith("<!DOCTYPE html>") and run_id in page.read_text()
    cards = served.client.get(f"/v1/runs/{run_id}/scorecards").json()["scorecards"]  # the report scored
    assert sorted(c["dataset"] for c in cards) == ["core", "edge"] and cards[0]["n"] > 0

    served.stop()  # the database is the CLI's again
    status = safeset("status", "--db", db, "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["run"] == run_id
