"""Resume after kill -9 and Ctrl-C of a real `safeset run` process: the final dataset equals an
uninterrupted run's, no id is duplicated, and no answer that was cached is asked for again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.store import Store
from tests.conftest import scripted_roles
from tests.servers.chat_server import ChatServer, Latency

PER_CATEGORY = 6  # 84 scenario items


def write_run_config(write_config, server: ChatServer) -> Path:
    return write_config(
        {
            "name": "resume",
            "seed": 11,
            "roles": scripted_roles(server),
            "stages": {
                "domains": {"scenarios_per_category": PER_CATEGORY},
                "scenarios": {"concurrency": 4, "refusal": None},  # no classifier to load: timing matters
            },
        }
    )


def start(config: Path, db: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "run", str(config), "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(config: Path, db: Path) -> subprocess.CompletedProcess:
    proc = start(config, db)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def wait_for_answers(server: ChatServer, count: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while server.stats.total_answered() < count:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.005)


def snapshot(db: Path) -> tuple[dict[str, dict], set[str], list[tuple]]:
    store = Store.open(db, read_only=True)
    try:
        run_id = store.resolve_run(None)
        records = {r.id: r.data for stage in ("domains", "scenarios") for r in store.records(run_id, stage)}
        keys = {row[0] for row in store.con.execute("SELECT key FROM llm_cache").fetchall()}
        sessions = store.con.execute("SELECT session, status FROM sessions ORDER BY session").fetchall()
        parents = store.con.execute(
            "SELECT parent_ids[1], count(*) FROM records WHERE stage = 'scenarios' "
            "GROUP BY 1 HAVING count(*) > 1"
        ).fetchall()
        assert parents == [], "a domain slot got two scenarios"
        return records, keys, sessions
    finally:
        store.close()


@pytest.fixture
def reference(chat_server, write_config, tmp_path):
    """An uninterrupted run's records, on a server of its own with the same answers."""
    server = chat_server(latency=Latency(base=0.01))
    db = tmp_path / "reference.duckdb"
    finish(write_run_config(write_config, server), db)
    records, _, _ = snapshot(db)
    assert len(records) == 14 * PER_CATEGORY * 2
    return records


@pytest.mark.parametrize("kill_after", [1, 20, 50, 80])
def test_kill_9_then_resume_gives_the_uninterrupted_dataset(
    chat_server, write_config, tmp_path, reference, kill_after
):
    server = chat_server(latency=Latency(base=0.01))
    config = write_run_config(write_config, server)
    db = tmp_path / "killed.duckdb"
    proc = start(config, db)
    wait_for_answers(server, kill_after, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)

    _, cached_at_kill, sessions = snapshot(db)
    assert sessions == [(1, "running")]  # killed: it never got to say how it ended
    answered_at_kill = dict(server.stats.answered)

    finish(config, db)
    records, _, sessions = snapshot(db)
    assert records == reference
    assert sessions == [(1, "crashed"), (2, "completed")]
    cache_key = server_to_cache_keys(db)
    assert set(server.stats.answered) == set(cache_key)  # every answer is cached, and the map is complete
    repeated = [
        k
        for k, n in server.stats.answered.items()
        if n > answered_at_kill.get(k, 0) and cache_key[k] in cached_at_kill
    ]
    assert repeated == []
    assert max(server.stats.answered.values()) <= 2  # at most the calls in flight when it died


def server_to_cache_keys(db: Path) -> dict[str, str]:
    """The scripted server's key of each cached request -> safeset's cache key, rebuilt from the stored
    request payloads the way the openai backend sends them."""
    import json

    from tests.servers.chat_server import request_key

    store = Store.open(db, read_only=True)
    try:
        rows = store.con.execute("SELECT key, request FROM llm_cache").fetchall()
    finally:
        store.close()
    mapping = {}
    for key, request in rows:
        payload = json.loads(request)
        body = {
            "model": payload["model"],
            "messages": payload["messages"],
            "seed": payload["seed"],
            "n": payload["n"],
            "temperature": payload["temperature"],
            "max_tokens": payload["max_tokens"],
            "logprobs": True if payload["logprobs"] else None,
        }
        if payload["json_schema"] is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": payload["schema_name"],
                    "schema": payload["json_schema"],
                    "strict": True,
                },
            }
        mapping[request_key(body)] = key
    return mapping


def test_ctrl_c_stops_at_a_transaction_boundary_and_says_how_to_resume(
    chat_server, write_config, tmp_path, reference
):
    server = chat_server(latency=Latency(base=0.01))
    config = write_run_config(write_config, server)
    db = tmp_path / "interrupted.duckdb"
    proc = start(config, db)
    wait_for_answers(server, 30, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "Interrupted" in err and "Resume with:" in err
    assert f"safeset run {config} --db {db}" in err
    records, cached, sessions = snapshot(db)
    assert sessions == [(1, "interrupted")]
    assert len(cached) > 0
    done = sum(1 for data in records.values() if "scenario" in data)
    assert 0 < done < 14 * PER_CATEGORY

    calls_before = server.stats.total_answered()
    finish(config, db)
    records, _, sessions = snapshot(db)
    assert records == reference
    assert sessions == [(1, "interrupted"), (2, "completed")]
    assert server.stats.total_answered() - calls_before <= 14 * PER_CATEGORY - done + 8


def test_a_second_run_on_the_same_database_is_refused_with_the_pid(chat_server, write_config, tmp_path):
    server = chat_server(latency=Latency(base=0.05))
    config = write_run_config(write_config, server)
    db = tmp_path / "busy.duckdb"
    first = start(config, db)
    wait_for_answers(server, 1, first)
    second = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", str(config), "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 2
    assert f"is in use by pid {first.pid}" in second.stderr
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=30)


def test_status_during_a_run_shows_the_runs_live_status(chat_server, write_config, tmp_path):
    server = chat_server(latency=Latency(base=0.2))
    config = write_run_config(write_config, server)
    db = tmp_path / "live.duckdb"
    status_cmd = [sys.executable, "-m", "pipeline.cli", "status", "--db", str(db), "--json"]
    run = start(config, db)
    live = Path(f"{db}.status.json")
    deadline = time.monotonic() + 30
    while not live.exists():
        assert time.monotonic() < deadline and run.poll() is None
        time.sleep(0.1)
    status = subprocess.run(status_cmd, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    assert f"a run is in progress in pid {run.pid}" in status.stderr
    report = json.loads(status.stdout)
    assert report["pid"] == run.pid and set(report["stages"]) == {"domains", "scenarios"}
    assert report["stages"]["scenarios"]["pending"] > 0
    run.send_signal(signal.SIGINT)
    run.communicate(timeout=30)
    assert not live.exists()
    final = json.loads(subprocess.run(status_cmd, capture_output=True, text=True, timeout=60).stdout)
    assert "pid" not in final and final["stages"]["scenarios"]["done"] > 0
