"""`safeset status --run X` while another run holds the database: a real run in progress against the
scripted server, and real `safeset status` processes beside it. Only the running run's live status
can be read then: asked for it (by id or prefix) it is shown; asked for another run of the database,
or one that does not exist, status says so with exit 2 instead of showing the running run."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import duckdb
import yaml

from tests.conftest import scripted_roles
from tests.ops.helpers import safeset, start
from tests.servers.chat_server import Latency


def config(server, name: str, per_category: int) -> dict:
    return {
        "name": name,
        "seed": 5,
        "roles": scripted_roles(server),
        "stages": {"domains": {"scenarios_per_category": per_category}, "scenarios": {"concurrency": 4}},
    }


def test_status_of_a_run_other_than_the_running_one_is_never_the_running_ones(chat_server, tmp_path):
    server = chat_server(latency=Latency(base=0.2))
    db = tmp_path / "busy.duckdb"
    finished, running = tmp_path / "finished.yaml", tmp_path / "running.yaml"
    finished.write_text(yaml.safe_dump(config(server, "finished", 1)))
    running.write_text(yaml.safe_dump(config(server, "running", 40)))  # 560 calls, 4 at a time: minutes
    assert safeset("run", str(finished), "--db", str(db)).returncode == 0
    con = duckdb.connect(str(db), read_only=True)
    (old,) = con.execute("SELECT run_id FROM runs").fetchone()
    con.close()

    run = start("run", str(running), "--db", str(db))
    live = Path(f"{db}.status.json")
    deadline = time.monotonic() + 60
    while not live.exists():
        assert time.monotonic() < deadline and run.poll() is None, run.communicate()
        time.sleep(0.1)
    try:
        current = json.loads(live.read_text())["run"]
        assert current.startswith("running-")
        asked = {
            x: safeset("status", "--db", str(db), "--json", *(["--run", x] if x else []))
            for x in ("nope", old, "finished", current, "running", None)
        }
        assert run.poll() is None, "the run ended before status was asked"
    finally:
        run.send_signal(signal.SIGINT)
        run.communicate(timeout=60)

    result = asked["nope"]
    assert result.returncode == 2 and result.stdout == "", result.stdout
    assert f"no run matches 'nope' in {db}; runs: {old}, {current}" in result.stderr, result.stderr
    for other in (old, "finished"):  # by id and by prefix
        result = asked[other]
        assert result.returncode == 2 and result.stdout == "", result.stdout
        assert f"in use by pid {run.pid}, which is running run {current}" in result.stderr, result.stderr
        assert f"the status of run {old} can be read when it ends" in result.stderr
    for same in (current, "running", None):
        result = asked[same]
        assert result.returncode == 0, result.stderr
        assert f"a run is in progress in pid {run.pid}" in result.stderr
        report = json.loads(result.stdout)
        assert report["run"] == current and "runs" not in report

    result = safeset("status", "--db", str(db), "--run", old, "--json")  # the run over: readable again
    assert result.returncode == 0 and json.loads(result.stdout)["run"] == old
