"""Outages: the scripted endpoint, a real server process, is killed in the middle of a real
`safeset run` of the TRIDENT pipeline and brought back on the same port after longer than the retry
budget; and an endpoint that is never up. An outage is not an answer: the run pauses (no attempt
spent, no item failed, no seed changed), shows the outage in its log and in `safeset status`, and
resumes by itself; past the outage limit it stops with exit code 3 and the same command continues
later. Either way the dataset and its export are those of an uninterrupted run."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import duckdb
import pytest
import yaml

from tests.ops.helpers import ServerProcess, dataset, safeset, sessions, start
from tests.pipeline.stages.conftest import trident_config
from tests.pipeline.stages.trident_world import World
from tests.servers.chat_server import Faults, Latency

pytestmark = pytest.mark.slow

STAGES = ("domains", "scenarios", "personas", "related_personas", "persona_pool", "instructions",
          "safety_filter", "dedup", "core", "tactics", "rewrite", "edge")  # fmt: skip
# One retry, after about a quarter of a second: an outage of seconds outlasts it many times over.
ROLE = {"max_retries": 1}
WIDE = {"COLUMNS": "400"}  # log lines unwrapped, to be searched


class _Url:
    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/v1"


def write_config(folder: Path, port: int, name: str = "outage") -> Path:
    raw = trident_config(_Url(port), name=name, seed=11)
    raw["roles"]["default"].update(ROLE)
    config = folder / f"{name}.yaml"
    config.write_text(yaml.safe_dump(raw))
    return config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def failures(db: Path) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT stage, item_id, reason FROM progress WHERE status = 'failed'").fetchall()
    finally:
        con.close()


def exported(db: Path, out: Path) -> dict[str, bytes]:
    """The jsonl export of the run: every file's bytes (exports are deterministic, so an interrupted
    run's export must equal the uninterrupted one's byte for byte)."""
    result = safeset("export", "--db", str(db), "--format", "jsonl", "--out", str(out))
    assert result.returncode == 0, result.stderr
    files = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert "README.md" in files and "core.jsonl" in files and "edge.jsonl" in files
    return files


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run: its dataset, its export, and how many calls it took."""
    folder = tmp_path_factory.mktemp("outage-reference")
    with ServerProcess(script=World()) as server:
        config = write_config(folder, server.port)
        db = folder / "reference.duckdb"
        result = safeset("run", str(config), "--db", str(db))
        assert result.returncode == 0, result.stderr
        calls = server.stats().requests
    records = dataset(db, STAGES)
    assert len(records["core"]) == 24 and len(records["edge"]) == 25
    return records, exported(db, folder / "export"), calls


def test_an_outage_mid_run_pauses_and_resumes_with_the_uninterrupted_dataset(reference, tmp_path):
    expected, expected_export, calls = reference
    server = ServerProcess(script=World(), latency=Latency(base=0.02))
    config = write_config(tmp_path, server.port)
    db = tmp_path / "outage.duckdb"
    run = start("run", str(config), "--db", str(db), "--outage-limit", "120", env=WIDE)
    try:
        while server.stats().requests < calls // 3:  # a third of the way through
            assert run.poll() is None, run.communicate()
            time.sleep(0.05)
        server.kill()
        down_at = time.monotonic()
        time.sleep(3)  # every in-flight call has met the refused connection by now
        status = safeset("status", "--db", str(db), env=WIDE)
        assert status.returncode == 0, status.stderr
        assert "unreachable since" in status.stdout and "retrying" in status.stdout, status.stdout
        while time.monotonic() - down_at < 6:  # down far longer than one retry's budget
            time.sleep(0.1)
        assert run.poll() is None, "the run ended during the outage"
        server = ServerProcess(port=server.port, script=World())
        out, err = run.communicate(timeout=180)
    finally:
        if run.poll() is None:
            run.kill()
        server.stop()
    assert run.returncode == 0, err[-3000:]
    assert "unreachable since" in err and "answers again" in err, err[-3000:]
    assert "finished" in out
    assert failures(db) == []
    assert sessions(db) == ["completed"]  # one session: it paused and went on by itself
    assert dataset(db, STAGES) == expected
    assert exported(db, tmp_path / "export") == expected_export


def test_an_endpoint_never_up_stops_at_the_limit_and_the_same_command_continues(reference, tmp_path):
    expected, expected_export, _ = reference
    port = free_port()
    config = write_config(tmp_path, port)
    db = tmp_path / "never.duckdb"
    command = ("run", str(config), "--db", str(db), "--outage-limit", "3")
    started = time.monotonic()
    stopped = safeset(*command, timeout=60, env=WIDE)
    seconds = time.monotonic() - started
    assert stopped.returncode == 3, stopped.stderr[-3000:]
    assert seconds < 30
    assert "finished" not in stopped.stdout + stopped.stderr
    assert f"endpoint http://127.0.0.1:{port}/v1 unreachable since" in stopped.stderr
    assert "longer than the outage limit of 3s" in stopped.stderr
    assert "Pending: scenarios 8" in stopped.stderr and "--outage-limit 3" in stopped.stderr
    assert failures(db) == []
    assert sessions(db) == ["outage"]
    with ServerProcess(port=port, script=World()):
        again = safeset(*command)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed and finished" in again.stdout
    assert failures(db) == [] and sessions(db) == ["outage", "completed"]
    assert dataset(db, STAGES) == expected
    assert exported(db, tmp_path / "export") == expected_export


def test_the_live_status_names_the_endpoint_that_is_down(tmp_path):
    """`status --json` during an outage carries the endpoint, since when and why."""
    port = free_port()
    config = write_config(tmp_path, port)
    db = tmp_path / "live.duckdb"
    run = start("run", str(config), "--db", str(db), "--outage-limit", "30")
    try:
        deadline = time.monotonic() + 20
        report: dict = {}
        while time.monotonic() < deadline and not report.get("outages"):
            time.sleep(0.5)
            result = safeset("status", "--db", str(db), "--json")
            if result.returncode == 0:
                report = json.loads(result.stdout)
        [down] = report["outages"]
        assert down["endpoint"] == f"http://127.0.0.1:{port}/v1" and down["reason"] == "connection error"
        assert report["stages"]["scenarios"]["failed"] == 0
    finally:
        run.terminate()
        run.communicate(timeout=30)
    assert run.returncode == 130


def small_config(folder: Path, url: str) -> Path:
    raw = {
        "name": "small",
        "seed": 4,
        "roles": {
            "default": {"backend": "openai", "model": "scripted", "base_urls": [url], "max_retries": 1}
        },
        "stages": {"domains": {"scenarios_per_category": 3}, "scenarios": {}},
    }
    config = folder / "small.yaml"
    config.write_text(yaml.safe_dump(raw))
    return config


def test_retrying_transport_failures_gives_the_uninterrupted_dataset(tmp_path):
    """Items that failed on HTTP 500s spent no answer: `--retry-failed` asks the same requests with
    the same seeds, so the dataset is the one a run without faults makes."""
    with ServerProcess() as clean:
        config = small_config(tmp_path, clean.url)
        assert safeset("run", str(config), "--db", str(tmp_path / "clean.duckdb")).returncode == 0
    expected = dataset(tmp_path / "clean.duckdb", ("domains", "scenarios"))
    db = tmp_path / "faulty.duckdb"
    with ServerProcess(faults=Faults(rate_500=0.6)) as faulty:
        config = small_config(tmp_path, faulty.url)
        first = safeset("run", str(config), "--db", str(db), env=WIDE)
    assert first.returncode == 0, first.stderr[-2000:]
    failed = failures(db)
    assert failed and all(reason == "HTTP 500 after 2 attempt(s)" for *_, reason in failed)
    assert f"{len(failed)} item(s) failed for good" in first.stdout and "--retry-failed" in first.stdout
    with ServerProcess(port=faulty.port) as fixed:
        assert fixed.url == faulty.url  # the same config, so the same run
        again = safeset("run", str(config), "--db", str(db), "--retry-failed")
    assert again.returncode == 0, again.stderr[-2000:]
    assert failures(db) == []
    assert dataset(db, ("domains", "scenarios")) == expected


def test_a_run_stopped_with_work_pending_never_says_finished(tmp_path):
    with ServerProcess() as server:
        config = small_config(tmp_path, server.url)
        db = tmp_path / "pending.duckdb"
        result = safeset("run", str(config), "--db", str(db), "--max-items", "5", env=WIDE)
        assert result.returncode == 3, result.stderr[-2000:]
        assert "finished" not in result.stdout and "stopped with work pending" in result.stdout
        assert "Pending: domains 37" in result.stdout
        command = result.stdout.split("Continue with:")[1].split()
        assert "--max-items" not in command
        rest = safeset(*command[1:])  # the command it names, as it names it
    assert rest.returncode == 0, rest.stderr[-2000:]
    assert "finished" in rest.stdout


def test_a_gateway_answering_503_through_every_retry_is_an_outage_not_a_failure(tmp_path):
    """A proxy in front of a server that is down answers 503 at once: through every retry, that is
    an outage. The run stops at the limit with nothing failed, and continues once the server is up."""
    with ServerProcess(faults=Faults(rate_500=1.0, status_500=503)) as gateway:
        config = small_config(tmp_path, gateway.url)
        db = tmp_path / "gateway.duckdb"
        stopped = safeset("run", str(config), "--db", str(db), "--outage-limit", "2", env=WIDE)
    assert stopped.returncode == 3, stopped.stderr[-2000:]
    assert "unreachable since" in stopped.stderr and "HTTP 503 after 2 attempt(s)" in stopped.stderr
    assert failures(db) == []
    with ServerProcess(port=gateway.port):
        again = safeset("run", str(config), "--db", str(db))
    assert again.returncode == 0, again.stderr[-2000:]
    assert failures(db) == []
