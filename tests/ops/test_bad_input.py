"""Bad input: each case is a clear message, exit code 2, no traceback, and nothing half-written (no
database where there was none, no rows where there was one, an intact database after a full disk)."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.kinds import RUN_KINDS
from pipeline.stage import Stage, StageInputError
from pipeline.store import Store
from tests.conftest import scripted_roles
from tests.ops.helpers import can_mount, dataset, remount_read_only, safeset, start, table_counts, tmpfs
from tests.servers.chat_server import Latency

QUICKSTART = Path(__file__).parents[2] / "configs" / "quickstart.yaml"


def invoke(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def small_config(server, name: str = "small", per_category: int = 2, **stages) -> dict:
    return {
        "name": name,
        "seed": 5,
        "roles": scripted_roles(server),
        "stages": {"domains": {"scenarios_per_category": per_category}, "scenarios": {}, **stages},
    }


# ---- configs -------------------------------------------------------------------------------------

CONFIGS = {
    "binary": (b"name: x\nstages:\x00\xff\xfe\x00", "cannot read the file: 'utf-8' codec can't decode"),
    "broken YAML": (b"name: x\nstages: {domains: [1,\n", "line 3, column 1: not valid YAML"),
    "truncated": (
        QUICKSTART.read_bytes()[: QUICKSTART.read_bytes().index(b"scenarios: {max_tokens") + 20],
        "not valid YAML (expected ',' or '}'",
    ),  # fmt: skip
    "empty": (b"", "the file is empty"),
    "a list": (b"- domains\n- scenarios\n", "must be a mapping"),
    "unknown stage": (b"name: x\nstages: {domainz: {}}\n", "unknown key (did you mean 'domains'?)"),
    "missing upstream": (
        b"name: x\nroles: {default: {backend: openai, model: m}}\nstages: {scenarios: {}}\n",
        "needs stage 'domains'",
    ),
    "an eval stage": (
        b"name: x\nroles: {default: {backend: openai, model: m}}\nstages: {eval_answers: {}}\n",
        "stages.eval_answers: unknown key; allowed: domains, scenarios, personas",
    ),
    "missing seed file": (
        b"name: x\nroles: {default: {backend: openai, model: m}}\n"
        b"stages: {overrefusal_seeds: {file: no/such/seeds.jsonl}, evolve: {}}\n",
        "no/such/seeds.jsonl: file not found",
    ),
    "a key in the config": (
        b"name: x\nroles: {default: {backend: openai, model: m, api_key: sk-1}}\nstages: {domains: {}}\n",
        "secrets never go in a config",
    ),
}


@pytest.mark.parametrize("case", CONFIGS)
def test_a_bad_config_is_named_and_writes_nothing(tmp_path, case):
    content, message = CONFIGS[case]
    config = tmp_path / "bad.yaml"
    config.write_bytes(content)
    db = tmp_path / "run.duckdb"
    result = invoke("run", str(config), "--db", str(db))
    assert result.exit_code == 2
    assert "error:" in result.stderr and str(config) in result.stderr
    assert message in result.stderr, result.stderr
    assert not db.exists() and list(tmp_path.iterdir()) == [config]


def test_a_missing_config_file_writes_nothing(tmp_path):
    result = invoke("run", str(tmp_path / "nope.yaml"), "--db", str(tmp_path / "run.duckdb"))
    assert result.exit_code == 2 and "file not found" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_unreadable_seed_source_found_at_planning_writes_nothing(tmp_path, chat_server):
    """A seed 'file' without a suffix is only found bad when the source stage reads it: no database
    is left behind, and an existing one gains no run, session or record."""
    server = chat_server()
    bad = tmp_path / "bad.yaml"
    roles = scripted_roles(server)
    stages = {"overrefusal_seeds": {"file": "no_such_folder"}, "evolve": {}}
    bad.write_text(yaml.safe_dump({"name": "seeds", "roles": roles, "stages": stages}))
    fresh = tmp_path / "fresh.duckdb"
    result = invoke("run", str(bad), "--db", str(fresh))
    assert result.exit_code == 2 and "error: stages.overrefusal_seeds: no_such_folder" in result.stderr
    assert not fresh.exists() and not Path(f"{fresh}.wal").exists()

    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(small_config(server)))
    existing = tmp_path / "existing.duckdb"
    assert invoke("run", str(good), "--db", str(existing)).exit_code == 0
    before = table_counts(existing)
    result = invoke("run", str(bad), "--db", str(existing))
    assert result.exit_code == 2 and "no_such_folder" in result.stderr
    assert table_counts(existing) == before


class _UnusableInput(Stage):
    name = "unusable_input"

    def plan(self) -> list:
        raise StageInputError(self.name, "probe.csv: row 3 has no text")


def test_a_stage_that_finds_its_input_unusable_stops_the_run_with_its_message(tmp_path, monkeypatch):
    """Any stage may raise StageInputError: one clear line naming the stage's settings, exit 2, no
    traceback, no database left behind."""
    monkeypatch.setitem(RUN_KINDS, "run", [*RUN_KINDS["run"], _UnusableInput])
    config = tmp_path / "probe.yaml"
    config.write_text(yaml.safe_dump({"name": "probe", "stages": {"unusable_input": {}}}))
    db = tmp_path / "run.duckdb"
    result = invoke("run", str(config), "--db", str(db))
    assert result.exit_code == 2
    assert "error: stages.unusable_input: probe.csv: row 3 has no text" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not db.exists()


# ---- the database file ---------------------------------------------------------------------------


def _not_duckdb(kind: str, path: Path, tmp_path: Path) -> None:
    if kind == "text":
        path.write_text("name,score\nalice,3\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "sqlite":
        with sqlite3.connect(path) as con:
            con.execute("CREATE TABLE records (id TEXT)")
    elif kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"id": ["a"]}), path)
    elif kind == "corrupted duckdb":
        real = tmp_path / "real.duckdb"
        Store.open(real).close()  # a valid, empty database ...
        data = bytearray(real.read_bytes())
        data[8192:16384] = bytes(range(256)) * 32  # ... with a block overwritten
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("kind", ["text", "empty", "sqlite", "parquet", "corrupted duckdb"])
@pytest.mark.parametrize("command", ["run", "status", "export", "score"])
def test_a_file_that_is_not_a_duckdb_database_is_refused_untouched(tmp_path, kind, command):
    db = tmp_path / "data.duckdb"
    _not_duckdb(kind, db, tmp_path)
    before = db.read_bytes()
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"name": "x", "roles": {"default": {"backend": "openai", "model": "m"}},
                                      "stages": {"domains": {}}}))  # fmt: skip
    args = {
        "run": ["run", str(config)],
        "status": ["status"],
        "export": ["export", "--out", str(tmp_path / "out")],
        "score": ["score"],
    }[command]
    result = invoke(*args, "--db", str(db))
    assert result.exit_code == 2, result.output
    assert "not a DuckDB database" in result.stderr or "Corrupt database file" in result.stderr, result.stderr
    assert db.read_bytes() == before
    assert not (tmp_path / "out").exists() and not Path(f"{db}.wal").exists()


def test_a_folder_as_db_is_a_usage_error(tmp_path):
    result = invoke("status", "--db", str(tmp_path))
    assert result.exit_code == 2 and "is a directory" in result.stderr


# ---- the disk ------------------------------------------------------------------------------------


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nothing can be written to: a read-only tmpfs as root, else a folder without write
    permission."""
    folder = tmp_path / "ro"
    with tmpfs(folder, 1024, read_only=True) as mounted:
        if not mounted:
            if can_mount():
                pytest.skip("cannot mount a tmpfs here")
            folder.chmod(0o555)
        yield folder
        if not mounted:
            folder.chmod(0o755)


def test_a_database_on_a_read_only_disk_is_refused(chat_server, tmp_path, read_only_folder):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(small_config(chat_server())))
    for db in (read_only_folder / "run.duckdb", read_only_folder / "sub" / "run.duckdb"):
        result = safeset("run", str(config), "--db", str(db))
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert "Read-only file system" in result.stderr or "Permission denied" in result.stderr
        assert not db.exists()


@pytest.mark.skipif(not can_mount(), reason="remounting needs root")
def test_a_disk_turned_read_only_under_a_database_is_refused_and_the_database_kept(chat_server, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(small_config(chat_server())))
    with tmpfs(tmp_path / "disk", 8192) as mounted:
        if not mounted:
            pytest.skip("cannot mount a tmpfs here")
        db = tmp_path / "disk" / "run.duckdb"
        assert safeset("run", str(config), "--db", str(db)).returncode == 0
        before = table_counts(db)
        remount_read_only(tmp_path / "disk")
        result = safeset("run", str(config), "--db", str(db))
        assert result.returncode == 2 and "Read-only file system" in result.stderr
        assert "Traceback" not in result.stderr
        assert table_counts(db) == before


def test_a_full_disk_stops_the_run_with_the_database_intact_and_resumable(chat_server, tmp_path):
    """The disk fills in the middle of a run: exit 2 with what to do, the failed transaction rolled
    back; the database moved to a roomy disk resumes to exactly an uninterrupted run's dataset."""
    server = chat_server()
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(small_config(server, "full", 20, personas={})))  # 560 calls
    stages = ("domains", "scenarios", "personas")
    reference = tmp_path / "reference.duckdb"
    assert safeset("run", str(config), "--db", str(reference)).returncode == 0

    with tmpfs(tmp_path / "disk", 1024) as mounted:  # its log fills 1 MiB about half way
        db = tmp_path / "disk" / "run.duckdb"
        # Without a tmpfs: the same limit on the size of any file the run writes.
        result = safeset("run", str(config), "--db", str(db), file_size=None if mounted else 1024 * 1024)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        reason = "no space left on device" if mounted else "file too large"
        assert f"cannot write {db}: {reason}" in result.stderr, result.stderr
        assert "run the same command again to continue" in result.stderr
        moved = tmp_path / "moved"
        shutil.copytree(tmp_path / "disk", moved)
    partial = dataset(moved / "run.duckdb", stages)
    # Stopped part way: some of the records committed, not all (how far it got depends on the machine).
    whole = dataset(reference, stages)
    assert 0 < sum(map(len, partial.values())) < sum(map(len, whole.values()))

    result = safeset("run", str(config), "--db", str(moved / "run.duckdb"))
    assert result.returncode == 0, result.stderr
    assert "resumed and finished" in result.stdout
    assert dataset(moved / "run.duckdb", stages) == whole


# ---- a second run --------------------------------------------------------------------------------


def test_a_second_process_on_a_busy_database_is_refused_and_writes_nothing(chat_server, tmp_path):
    server = chat_server(latency=Latency(base=0.2))
    first_config, second_config = tmp_path / "first.yaml", tmp_path / "second.yaml"
    # 560 items, 4 at a time, 0.2 s each: half a minute, while the others try.
    first_config.write_text(yaml.safe_dump(small_config(server, "first", 40, scenarios={"concurrency": 4})))
    second_config.write_text(yaml.safe_dump(small_config(server, "second", 1)))
    db = tmp_path / "busy.duckdb"
    first = start("run", str(first_config), "--db", str(db))
    deadline = time.monotonic() + 60
    while server.stats.total_answered() < 2:
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    try:
        attempts = {
            "run": safeset("run", str(second_config), "--db", str(db)),
            "same run": safeset("run", str(first_config), "--db", str(db)),
            "export": safeset("export", "--out", str(tmp_path / "out"), "--db", str(db)),
            "score": safeset("score", "--db", str(db)),
        }
        assert first.poll() is None, "the first run ended before the others tried"
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    for name, result in attempts.items():
        assert result.returncode == 2, (name, result.stderr)
        assert f"is in use by pid {first.pid}" in result.stderr, (name, result.stderr)
    assert not (tmp_path / "out").exists()
    counts = table_counts(db)
    assert counts["runs"] == 1 and counts["sessions"] == 1
