"""Crashes: `kill -9` of a real `safeset run` of the TRIDENT pipeline (twelve stages, three barriers)
at ten random moments, chosen with a fixed seed along the stream of LLM answers; each resume ends
with exactly the dataset of an uninterrupted run with the same seed: the same records (ids, data,
lineage) in every stage, none twice, and no answer that was committed asked again. About two
minutes (marked slow)."""

from __future__ import annotations

import os
import random
import signal
import time

import duckdb
import pytest
import yaml

from tests.ops.helpers import dataset, safeset, sessions, settled, start
from tests.pipeline.stages.conftest import trident_config
from tests.pipeline.stages.trident_world import World
from tests.servers.chat_server import ChatServer, Latency

pytestmark = pytest.mark.slow

STAGES = ("domains", "scenarios", "personas", "related_personas", "persona_pool", "instructions",
          "safety_filter", "dedup", "core", "tactics", "rewrite", "edge")  # fmt: skip
KILLS = 10


def cache_size(db) -> int:
    if not db.exists():  # killed before it opened the database
        return 0
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM llm_cache").fetchone()[0]
    finally:
        con.close()


@pytest.fixture(scope="module")
def world():
    """One scripted server for every run: its answers are a function of the request alone."""
    with ChatServer(script=World(), latency=Latency(base=0.005)) as server:
        yield server


@pytest.fixture(scope="module")
def reference(world, tmp_path_factory):
    folder = tmp_path_factory.mktemp("crashes")
    config = folder / "trident.yaml"
    config.write_text(yaml.safe_dump(trident_config(world, name="crash", seed=17)))
    before = world.stats.total_answered()
    result = safeset("run", str(config), "--db", str(folder / "reference.duckdb"))
    assert result.returncode == 0, result.stderr
    calls = world.stats.total_answered() - before
    records = dataset(folder / "reference.duckdb", STAGES)
    assert len(records["core"]) == 24 and len(records["edge"]) == 25
    return config, calls, records


def moments(calls: int) -> list[tuple[int, float]]:
    """Ten kill points: after the n-th LLM answer of the run, plus 0-150 ms (so some land in a
    commit, a barrier or a stage's start rather than right after an answer)."""
    rng = random.Random(20250805)
    return sorted((rng.randrange(0, calls), rng.uniform(0, 0.15)) for _ in range(KILLS))


def test_each_resume_after_kill_9_ends_with_the_uninterrupted_dataset(world, reference, tmp_path):
    config, calls, expected = reference
    for attempt, (answers, delay) in enumerate(moments(calls)):
        db = tmp_path / f"killed-{attempt}.duckdb"
        before = world.stats.total_answered()
        proc = start("run", str(config), "--db", str(db))
        deadline = time.monotonic() + 120
        while world.stats.total_answered() - before < answers:
            assert proc.poll() is None, f"run {attempt} ended before its kill: {proc.communicate()[1]}"
            assert time.monotonic() < deadline
            time.sleep(0.002)
        time.sleep(delay)
        finished_first = proc.poll() is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        settled(world)
        assert not finished_first, f"run {attempt} finished before its kill"
        asked_before_resume = world.stats.total_answered() - before
        cached_at_kill = cache_size(db)

        result = safeset("run", str(config), "--db", str(db))
        assert result.returncode == 0, result.stderr
        got = dataset(db, STAGES)
        for stage in STAGES:
            assert got[stage] == expected[stage], f"kill {attempt} after {answers} answers: {stage} differs"
        assert sessions(db)[-1] == "completed" and set(sessions(db)[:-1]) <= {"crashed"}
        # Answers committed before the kill are replayed from the cache; the resume asks exactly
        # the others (those in flight or not yet committed when it died, and those never asked).
        asked_in_resume = world.stats.total_answered() - before - asked_before_resume
        assert asked_in_resume == calls - cached_at_kill, (attempt, answers, asked_in_resume)


def test_the_moments_spread_over_the_run(reference):
    _, calls, _ = reference
    points = [answers / calls for answers, _ in moments(calls)]
    assert min(points) < 0.2 and max(points) > 0.8 and len(set(points)) == KILLS


def test_a_killed_database_left_alone_holds_no_partial_item(world, reference, tmp_path):
    """What kill -9 leaves behind, before any resume: every finished item has its outputs and its
    marker together (the transaction is the unit), so no output lacks a marker and vice versa."""
    config, calls, _ = reference
    db = tmp_path / "killed.duckdb"
    before = world.stats.total_answered()
    proc = start("run", str(config), "--db", str(db))
    while world.stats.total_answered() - before < calls // 2:
        assert proc.poll() is None
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    con = duckdb.connect(str(db), read_only=True)
    orphans = con.execute(
        "SELECT count(*) FROM records r WHERE r.stage <> 'domains' AND NOT EXISTS (SELECT 1 FROM progress p "
        "WHERE p.stage = r.stage AND list_contains(r.parent_ids, p.item_id))"
    ).fetchone()[0]
    short = con.execute(
        "SELECT count(*) FROM progress p WHERE p.status = 'done' AND p.n_outputs <> (SELECT count(*) "
        "FROM records r WHERE r.stage = p.stage AND list_contains(r.parent_ids, p.item_id))"
    ).fetchone()[0]
    con.close()
    assert orphans == 0 and short == 0
