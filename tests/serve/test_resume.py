"""A served run survives `kill -9` of the server: restarted on the same database, the server resumes
it by itself, and it ends with exactly the dataset (and export) of an uninterrupted `safeset run`.
Two runs on one endpoint at once share its limiter: together they never exceed its ceiling."""

from __future__ import annotations

import io
import signal
import time
import zipfile

import duckdb
import yaml

from tests.ops.helpers import dataset, safeset
from tests.pipeline.stages.conftest import trident_config
from tests.pipeline.stages.trident_world import World
from tests.servers.chat_server import ChatServer, Latency

STAGES = ("domains", "scenarios", "personas", "related_personas", "persona_pool", "instructions",
          "safety_filter", "dedup", "core", "tactics", "rewrite", "edge")  # fmt: skip


def export_files(served, run_id: str) -> dict[str, bytes]:
    job = served.client.post(f"/v1/runs/{run_id}/exports", json={"format": "jsonl"}).json()
    job = served.wait_export(job["job_id"])
    assert job["state"] == "finished", job
    download = served.client.get(f"/v1/exports/{job['job_id']}/download")
    archive = zipfile.ZipFile(io.BytesIO(download.content))
    return {name: archive.read(name) for name in archive.namelist()}


def test_kill_9_mid_run_then_restart_resumes_to_the_uninterrupted_dataset(serve, tmp_path):
    with ChatServer(script=World(), latency=Latency(base=0.03)) as world:
        text = yaml.safe_dump(trident_config(world, name="killed", seed=5))
        config = tmp_path / "run.yaml"
        config.write_text(text)
        reference_db = tmp_path / "reference.duckdb"
        assert safeset("run", str(config), "--db", str(reference_db)).returncode == 0
        expected = dataset(reference_db, STAGES)

        served = serve(workers=1)
        run_id = served.client.post("/v1/runs", json={"config": text}).json()["run"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # kill once the run is well under way, before it ends
            progress = served.client.get(f"/v1/runs/{run_id}/records", params={"dataset": "instructions"})
            if progress.json()["items"]:
                break
            time.sleep(0.05)
        served.kill()
        con = duckdb.connect(str(served.db), read_only=True)
        try:
            state = con.execute("SELECT state FROM serve_runs WHERE run_id = ?", [run_id]).fetchone()[0]
            core = con.execute("SELECT count(*) FROM records WHERE stage = 'core'").fetchone()[0]
        finally:
            con.close()
        assert state == "running" and core < 24  # killed mid-run

        served.restart()  # nothing submitted again: the server picks the run up by itself
        doc = served.wait_for(run_id)
        assert doc["queue"]["reason"] is None
        files = export_files(served, run_id)
        served.stop()

    assert dataset(served.db, STAGES) == expected
    con = duckdb.connect(str(served.db), read_only=True)
    try:
        sessions = [s for (s,) in con.execute("SELECT status FROM sessions ORDER BY session").fetchall()]
    finally:
        con.close()
    assert sessions == ["crashed", "completed"]
    out = tmp_path / "reference-export"
    assert (
        safeset("export", "--db", str(reference_db), "--format", "jsonl", "--out", str(out)).returncode == 0
    )
    assert files == {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_two_runs_on_one_endpoint_share_its_ceiling(serve, tmp_path):
    ceiling = 4
    # Calls slow enough that each run lasts well beyond the seconds a busy machine may take to start
    # the second one: the two must overlap for the shared ceiling to be tested at all.
    with ChatServer(script=World(), latency=Latency(base=0.1)) as world:
        served = serve(workers=2)
        runs = []
        for seed in (1, 2):
            config = trident_config(world, name="shared", seed=seed)
            config["roles"]["default"]["max_concurrency"] = ceiling
            response = served.client.post("/v1/runs", json={"config": config})
            assert response.status_code == 202, response.text
            runs.append(response.json()["run"])
        assert runs[0] != runs[1]
        for run_id in runs:
            assert served.wait_for(run_id)["status"]["stages"]["edge"]["pending"] == 0
        assert served.stop() in (0, -signal.SIGTERM)  # uvicorn ends by the signal it shut down on
        assert "Application shutdown complete" in served.log.read_text()
        assert world.stats.max_concurrent == ceiling  # reached, never exceeded

    con = duckdb.connect(str(served.db), read_only=True)
    try:
        spans = con.execute("SELECT started_at, ended_at FROM sessions ORDER BY run_id").fetchall()
        counts = con.execute(
            "SELECT run_id, count(*) FROM records WHERE stage = 'core' GROUP BY 1"
        ).fetchall()
    finally:
        con.close()
    (first_start, first_end), (second_start, second_end) = spans
    assert first_start < second_end and second_start < first_end  # the two runs ran at the same time
    assert sorted(n for _, n in counts) == [24, 24]
