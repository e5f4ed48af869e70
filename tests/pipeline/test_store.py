"""The DuckDB store: round trips, migrations, the work queue, atomic commits, clear open errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import datetime

import duckdb
import pytest

from pipeline.records import Record
from pipeline.store import (
    CacheEntry,
    CommitBatch,
    DatabaseInUse,
    ProgressRow,
    Store,
    StoreError,
    UsageDelta,
    migrations,
)


def rec(i: int, stage: str = "a", parents: tuple[str, ...] = (), **kw) -> Record:
    data = {"i": i, "text": f"item {i}", "nested": {"k": [1, 2]}}
    return Record(
        id=Record.make_id("r", stage, parents, data),
        run_id="r",
        stage=stage,
        data=data,
        parent_ids=parents,
        **kw,
    )


def test_records_round_trip_with_lineage(db_path):
    store = Store.open(db_path)
    parent = rec(1, category="S2", model="m", prompt_name="p", prompt_version=2, seed=7)
    child = rec(2, stage="b", parents=(parent.id,), tactic="cipher", persona_id="pp", request_key="k1")
    store.commit(CommitBatch(records=[parent, child]))
    store.close()

    store = Store.open(db_path, read_only=True)
    got = store.get(child.id)
    assert got.data == child.data and got.parent_ids == (parent.id,)
    assert (got.tactic, got.persona_id, got.request_key) == ("cipher", "pp", "k1")
    assert store.get(parent.id).category == "S2" and store.get(parent.id).prompt_version == 2
    assert [c.id for c in store.children(parent.id)] == [child.id]
    assert store.get(child.id[:6]).id == child.id  # a unique prefix is enough
    assert store.records("r", "a")[0].seq == 1 and got.seq == 2


def test_same_content_is_one_row(db_path):
    store = Store.open(db_path)
    store.commit(CommitBatch(records=[rec(1), rec(1)]))
    store.commit(CommitBatch(records=[rec(1)]))
    assert store.con.execute("SELECT count(*) FROM records").fetchone()[0] == 1


def test_pending_is_the_inputs_without_a_marker(db_path):
    store = Store.open(db_path)
    items = [rec(i) for i in range(5)]
    store.commit(CommitBatch(records=items))
    store.commit(
        CommitBatch(
            progress=[
                ProgressRow("r", "b", items[1].id, "done", 1),
                ProgressRow("r", "b", items[3].id, "failed", 0, "boom", 3),
            ]
        )
    )
    assert [(r.data["i"], n) for r, n in store.pending("r", "b", ["a"], 0, 10)] == [(0, 0), (2, 0), (4, 0)]
    assert [r.data["i"] for r, _ in store.pending("r", "b", ["a"], 3, 10)] == [4]  # after seq 3
    assert store.count_pending("r", "b", ["a"]) == 3
    assert store.progress_counts("r") == {"b": {"done": 1, "failed": 1}}
    assert store.failure_reasons("r") == [{"stage": "b", "reason": "boom", "count": 1}]
    retry = store.pending("r", "b", ["a"], 0, 10, retry_failed=True)
    assert [(r.data["i"], n) for r, n in retry] == [(0, 0), (2, 0), (3, 3), (4, 0)]
    store.commit(CommitBatch(progress=[ProgressRow("r", "b", items[3].id, "done", 1, attempts=4)]))
    assert store.progress_counts("r") == {"b": {"done": 2}}


def test_a_failed_commit_writes_nothing(db_path):
    store = Store.open(db_path)
    bad_marker = ProgressRow("r", None, "x", "done", 1)  # type: ignore[arg-type]
    with pytest.raises(duckdb.ConstraintException):
        store.commit(CommitBatch(records=[rec(2)], progress=[bad_marker], cache=[]))
    assert store.con.execute("SELECT count(*) FROM records").fetchone()[0] == 0
    store.commit(CommitBatch(records=[rec(3)]))  # the store is still usable
    assert store.con.execute("SELECT count(*) FROM records").fetchone()[0] == 1


def test_cache_and_usage(db_path):
    store = Store.open(db_path)
    entry = CacheEntry("k", "m", '{"q":1}', '{"samples":[]}', 3, 4, 0.5, "http://h/v1", datetime(2026, 1, 1))
    store.commit(
        CommitBatch(cache=[entry, entry], usage=[UsageDelta("r", "s", "m", calls=2, prompt_tokens=5)])
    )
    store.commit(CommitBatch(usage=[UsageDelta("r", "s", "m", calls=1, cached=4, cost_usd=0.5)]))
    assert store.cache_get(["k", "missing"]) == {"k": ('{"samples":[]}', 3, 4)}
    (usage,) = store.usage("r")
    assert (usage["calls"], usage["cached"], usage["prompt_tokens"], usage["cost_usd"]) == (3, 4, 5, 0.5)


@pytest.mark.parametrize("asked", [1, 3, 512, 513, 2000])
def test_a_cache_lookup_finds_every_cached_key_whatever_the_list_length(db_path, asked):
    # up to 512 keys are looked up in the key's index, more with one join: the same answer
    store = Store.open(db_path)
    at = datetime(2026, 1, 1)
    store.commit(
        CommitBatch(
            cache=[CacheEntry(f"k{i}", "m", "{}", f'"{i}"', i, 1, 0.1, "e", at) for i in range(0, 3000, 2)]
        )
    )
    keys = [f"k{i}" for i in range(asked)]
    assert store.cache_get(keys) == {f"k{i}": (f'"{i}"', i, 1) for i in range(0, asked, 2)}


def test_migrations_are_recorded_and_a_newer_schema_is_refused(db_path):
    Store.open(db_path).close()
    con = duckdb.connect(str(db_path))
    versions = [row[0] for row in con.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()]
    assert versions == [m.version for m in migrations.all_migrations()]
    con.execute("INSERT INTO schema_migrations VALUES (999, 'future', now()::TIMESTAMP)")
    con.close()
    with pytest.raises(StoreError, match="newer than this safeset knows"):
        Store.open(db_path)


def test_the_judged_category_is_stored_by_commits_and_back_filled_by_migration_007(db_path):
    judged = Record(id="j1", run_id="r", stage="core", data={"instruction": "x", "judged_category": "S3"})
    plain = Record(id="p1", run_id="r", stage="core", data={"instruction": "y"})
    store = Store.open(db_path)
    store.commit(CommitBatch(records=[judged, plain]))
    stored = "SELECT id, judged_category FROM records ORDER BY id"
    assert store.con.execute(stored).fetchall() == [("j1", "S3"), ("p1", None)]
    # a database written before 007: the column is not there, and opening it for writing fills it
    store.con.execute("ALTER TABLE records DROP COLUMN judged_category")
    store.con.execute("DELETE FROM schema_migrations WHERE version = 7")
    store.close()
    with pytest.raises(StoreError, match="older schema"):
        Store.open(db_path, read_only=True)
    store = Store.open(db_path)
    assert store.con.execute(stored).fetchall() == [("j1", "S3"), ("p1", None)]
    page = store.browse_page("r", "core", {"judged_category": "S3"}, 0, 10)
    assert [row["id"] for row in page["items"]] == ["j1"] and page["counts"]["judged_category"] == {"S3": 1}
    store.close()


def test_not_a_duckdb_file(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text("hello")
    with pytest.raises(StoreError, match="not a DuckDB database"):
        Store.open(path)


def test_missing_database_for_reading(tmp_path):
    with pytest.raises(StoreError, match="no database at"):
        Store.open(tmp_path / "none.duckdb", read_only=True)


def test_a_second_process_is_told_which_pid_holds_the_database(db_path):
    store = Store.open(db_path)
    code = textwrap.dedent(f"""
        from pipeline.store import Store, DatabaseInUse
        try:
            Store.open({str(db_path)!r})
        except DatabaseInUse as exc:
            print(exc.pid, exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    import os

    assert out.startswith(f"{os.getpid()} ")
    assert f"is in use by pid {os.getpid()}" in out
    store.close()
    assert isinstance(DatabaseInUse(db_path, 1), StoreError)


def test_runs_are_found_by_exact_id_or_unique_prefix(db_path):
    store = Store.open(db_path)
    for run_id in ("bench-1000", "bench-10000", "other-1"):
        store.ensure_run(run_id, "n", {}, 0, None, "test")
    assert store.resolve_run("bench-1000") == "bench-1000"  # exact wins over a longer match
    assert store.resolve_run("oth") == "other-1"
    with pytest.raises(StoreError, match="2 runs matches 'bench-'"):
        store.resolve_run("bench-")
    with pytest.raises(StoreError, match="no run matches 'x'"):
        store.resolve_run("x")


def test_the_latest_run_with_datasets_is_found_past_later_eval_runs(db_path):
    store = Store.open(db_path)
    store.ensure_run("r", "core-run", {}, 0, None, "test")  # rec() makes records of run "r"
    store.commit(CommitBatch(records=[rec(1, stage="core")]))
    store.ensure_run("judges-1", "judges", {}, 0, None, "test")  # created later, holds no dataset
    assert store.resolve_run(None) == "judges-1"
    assert store.resolve_run(None, with_records_in=("core", "edge")) == "r"
    assert store.resolve_run(None, with_records_in=("edge",)) == "judges-1"  # none has any: the latest
