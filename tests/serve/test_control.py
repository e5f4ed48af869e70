"""Stop, resume and retry through the API, and a clean shutdown (SIGTERM) in the middle of a run:
each stops at a transaction boundary, and the run, continued, ends with the uninterrupted dataset."""

from __future__ import annotations

import time

import duckdb
import yaml

from tests.ops.helpers import dataset, safeset, sessions
from tests.pipeline.stages.conftest import trident_config
from tests.pipeline.stages.trident_world import World
from tests.serve.test_resume import STAGES
from tests.servers.chat_server import ChatServer, Latency


def wait_for_records(served, run_id: str, stage: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if served.client.get(f"/v1/runs/{run_id}/records", params={"dataset": stage}).json()["items"]:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {stage} records")


def test_stop_resume_retry_and_sigterm(serve, tmp_path):
    with ChatServer(script=World(), latency=Latency(base=0.03)) as world:
        text = yaml.safe_dump(trident_config(world, name="control", seed=11))
        config = tmp_path / "run.yaml"
        config.write_text(text)
        reference = tmp_path / "reference.duckdb"
        assert safeset("run", str(config), "--db", str(reference)).returncode == 0

        served = serve(workers=1)
        first = served.client.post("/v1/runs", json={"config": text}).json()["run"]
        # a second run waits in the queue behind the first (one worker); stopping it takes it out
        second = served.client.post("/v1/runs", json={"config": text, "seed": 12}).json()["run"]
        assert served.client.get(f"/v1/runs/{second}").json()["queue"]["state"] == "queued"
        assert served.client.post(f"/v1/runs/{second}/stop").status_code == 200
        assert served.client.get(f"/v1/runs/{second}").json()["queue"]["state"] == "stopped"

        wait_for_records(served, first, "personas")
        assert served.client.post(f"/v1/runs/{first}/stop").json() == {"run": first, "stopping": True}
        stopped = served.wait_for(first, ("stopped",))
        assert stopped["queue"]["reason"] == "stopped on request"
        assert stopped["status"]["stages"]["edge"]["done"] < 25
        assert served.client.post(f"/v1/runs/{first}/stop").status_code == 409

        assert served.client.post(f"/v1/runs/{first}/resume").status_code == 202
        assert served.client.post(f"/v1/runs/{first}/resume").status_code == 409  # queued already
        wait_for_records(served, first, "instructions")
        assert served.stop() in (0, -15)  # SIGTERM: the run stops at a boundary, stays to be resumed
        con = duckdb.connect(str(served.db), read_only=True)
        try:
            state = con.execute("SELECT state FROM serve_runs WHERE run_id = ?", [first]).fetchone()[0]
        finally:
            con.close()
        assert state == "running"

        served.restart()
        done = served.wait_for(first)
        assert done["status"]["stages"]["edge"] == {"done": 25, "pending": 0, "failed": 0}
        assert served.client.post(f"/v1/runs/{first}/retry").json()["retry_failed"] is True
        again = served.wait_for(first)
        assert again["queue"]["retry_failed"] is True
        assert served.client.get(f"/v1/runs/{second}").json()["queue"]["state"] == "stopped"  # stays
        served.stop()

    assert sessions(served.db) == ["interrupted", "interrupted", "completed", "completed"]
    assert dataset(served.db, STAGES) == dataset(reference, STAGES)
